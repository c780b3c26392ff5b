namespace DeepAlign.Generation;

/// <summary>
/// How a <see cref="Generator"/> chooses tokens and when it stops. Defaults: greedy decoding of at most 256
/// new tokens, stopping on the model's end-of-sequence ids.
/// </summary>
/// <remarks>
/// Sampling processes the scores in the order of docs/method.md section 2 (and Hugging Face): temperature, then
/// top-k, then top-p, then one draw from the resulting distribution (see <see cref="LogitsProcessing"/> and
/// <see cref="TokenSampler"/>). Greedy decoding takes the argmax of the raw scores (first index on ties) and
/// ignores temperature, top-k and top-p.
/// </remarks>
public sealed record GenerationOptions
{
    /// <summary>Greedy decoding with all defaults.</summary>
    public static GenerationOptions Default { get; } = new();

    /// <summary>Largest number of tokens generated per row after the forced prefix (forced tokens do not count). Default 256.</summary>
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>False: greedy (argmax). True: sample with <see cref="Temperature"/>, <see cref="TopK"/>, <see cref="TopP"/>. Default false.</summary>
    public bool DoSample { get; init; }

    /// <summary>Divides the scores before sampling; must be positive. Default 1.0 (use <see cref="DoSample"/> = false for greedy).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keeps only the k best tokens when sampling (ties with the k-th score are kept); 0 turns it off. Default 0.</summary>
    public int TopK { get; init; }

    /// <summary>
    /// Nucleus sampling: keeps the smallest set of best tokens whose probability mass (after temperature and
    /// top-k) is at least p, including the token that crosses p; 1.0 turns it off. Default 1.0.
    /// </summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>
    /// Seed of the sampling draws; null draws a fresh seed per call. Row r of a call uses the seed of its request
    /// (<see cref="GenerationRequest.Seed"/>) or else one derived from this seed and r, so a row's draws do not depend on
    /// the other rows of the batch.
    /// </summary>
    public long? Seed { get; init; }

    /// <summary>
    /// Token ids that end a row (the stop token is kept as the row's last generated id). Null: the model's
    /// end-of-sequence ids when the generator knows them, else none. Empty: never stop on a token.
    /// </summary>
    public IReadOnlyList<long>? StopTokenIds { get; init; }

    /// <summary>Id written into left-padding positions (they are masked, so any valid id works). Null: the model's pad id, else 0.</summary>
    public long? PadTokenId { get; init; }

    /// <summary>Extra stop rules checked after every generated token (e.g. a text-aware stop-string checker).</summary>
    public IReadOnlyList<IStopCondition> StopConditions { get; init; } = Array.Empty<IStopCondition>();

    /// <summary>Optional hook that may override the chosen token of any row at any step (e.g. rank-assisted prefilling).</summary>
    public ITokenForcer? TokenForcer { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public GenerationOptions Validate()
    {
        if (MaxNewTokens < 1)
            throw new ArgumentException($"MaxNewTokens must be at least 1; got {MaxNewTokens}.", nameof(MaxNewTokens));
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentException($"Temperature must be a positive finite number; got {Temperature}. For greedy decoding set DoSample = false.", nameof(Temperature));
        if (TopK < 0)
            throw new ArgumentException($"TopK must be 0 (off) or positive; got {TopK}.", nameof(TopK));
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentException($"TopP must lie in (0, 1]; got {TopP}.", nameof(TopP));
        if (StopTokenIds is not null)
            foreach (var id in StopTokenIds)
                if (id < 0) throw new ArgumentException($"StopTokenIds must be non-negative; found {id}.", nameof(StopTokenIds));
        if (PadTokenId is < 0)
            throw new ArgumentException($"PadTokenId must be non-negative; got {PadTokenId}.", nameof(PadTokenId));
        if (StopConditions is null)
            throw new ArgumentException("StopConditions must not be null (use an empty list).", nameof(StopConditions));
        foreach (var c in StopConditions)
            if (c is null) throw new ArgumentException("StopConditions contains a null entry.", nameof(StopConditions));
        return this;
    }
}
