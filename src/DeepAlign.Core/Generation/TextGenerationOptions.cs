namespace DeepAlign.Generation;

/// <summary>Options of a <see cref="TextGenerator"/> call: the id-level <see cref="GenerationOptions"/> plus stop strings and tokenizer flags.</summary>
public sealed record TextGenerationOptions
{
    /// <summary>Decoding options (greedy/sampling, max tokens, stop ids, seeds, ...). Default <see cref="GenerationOptions.Default"/>.</summary>
    public GenerationOptions Generation { get; init; } = GenerationOptions.Default;

    /// <summary>
    /// Strings that end a row as soon as the generated text (after the forced prefix) contains one; the returned text
    /// is cut before it. Empty by default.
    /// </summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();

    /// <summary>Whether the tokenizer adds its BOS/EOS around the prompt text (false by default: chat templates write BOS themselves).</summary>
    public bool AddSpecialTokens { get; init; }

    /// <summary>Whether special tokens (e.g. the end-of-turn id) are dropped from the returned text. Default true.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public TextGenerationOptions Validate()
    {
        if (Generation is null) throw new ArgumentException("TextGenerationOptions.Generation must not be null.", nameof(Generation));
        Generation.Validate();
        if (StopStrings is null) throw new ArgumentException("TextGenerationOptions.StopStrings must not be null (use an empty list).", nameof(StopStrings));
        foreach (var s in StopStrings)
            if (string.IsNullOrEmpty(s)) throw new ArgumentException("TextGenerationOptions.StopStrings must not contain null or empty strings.", nameof(StopStrings));
        return this;
    }
}
