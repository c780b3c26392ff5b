namespace DeepAlign.Method.Detection;

/// <summary>
/// How responses are produced for a profile of the aligned model's own generations: the first
/// <see cref="ForcedPrefixTokens"/> tokens of each input's response are forced (prefilling), the aligned model continues
/// with <see cref="Generation"/>, and the result is scored by teacher forcing like any given response.
/// </summary>
public sealed record GeneratedProfileOptions
{
    /// <summary>Number of leading response tokens forced before the model continues (all of them when the response is
    /// shorter); 0 lets the model answer from the prompt alone. Default 10 (one of docs/method.md's prefilling depths 5, 10, 20, 40).</summary>
    public int ForcedPrefixTokens { get; init; } = 10;

    /// <summary>Decoding options of the aligned model. Default: greedy, at most 64 new tokens, stopping on the model's eos ids.</summary>
    public Generation.GenerationOptions Generation { get; init; } = new() { MaxNewTokens = 64 };

    /// <summary>Checks every field; throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    /// <returns>This instance.</returns>
    public GeneratedProfileOptions Validate()
    {
        if (ForcedPrefixTokens < 0)
            throw new ArgumentException($"GeneratedProfileOptions.ForcedPrefixTokens must be >= 0 (got {ForcedPrefixTokens}).", nameof(ForcedPrefixTokens));
        if (Generation is null) throw new ArgumentException("GeneratedProfileOptions.Generation must not be null.", nameof(Generation));
        Generation.Validate();
        return this;
    }
}
