namespace DeepAlign.Method;

/// <summary>The token-scoring rule of contrastive decoding (docs/method.md section 2).</summary>
public enum ContrastiveRule
{
    /// <summary>s(v) = l_a(v) + alpha (l_a(v) - l_b(v)): push away from everything the base prefers more.</summary>
    Full,

    /// <summary>s(v) = l_a(v) - alpha max(0, l_b(v) - l_a(v)): only demote base-favored tokens, never promote.</summary>
    BaseFavoredOnly,
}
