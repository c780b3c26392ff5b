namespace DeepAlign.Text;

/// <summary>
/// Bounds on what a tokenizer file may make DeepAlign do (docs/reliability.md). Immutable; <see cref="Validate"/>
/// checks it.
/// </summary>
public sealed record TokenizerLimits
{
    /// <summary>The default limits.</summary>
    public static TokenizerLimits Default { get; } = new();

    /// <summary>
    /// Longest time one match of a tokenizer.json regex (pre_tokenizer Split, normalizer Replace) may take; a
    /// catastrophically backtracking pattern such as <c>(a+)+$</c> then fails with
    /// <see cref="TokenizerFormatException"/> instead of hanging. Default 1 second.
    /// </summary>
    public TimeSpan RegexMatchTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest token id + 1 accepted (the id-to-token table is this long). Default 4,194,304.</summary>
    public int MaxVocabularySize { get; init; } = 4 * 1024 * 1024;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (RegexMatchTimeout <= TimeSpan.Zero)
            throw new ArgumentException($"RegexMatchTimeout must be positive, got {RegexMatchTimeout}.", nameof(RegexMatchTimeout));
        if (MaxVocabularySize <= 0)
            throw new ArgumentException($"MaxVocabularySize must be positive, got {MaxVocabularySize}.", nameof(MaxVocabularySize));
    }
}
