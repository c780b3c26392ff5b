namespace DeepAlign.Method.SafeDecoding;

/// <summary>
/// Options of SafeDecoding (Xu et al., ACL 2024; see docs/safedecoding.md): how many response tokens are steered, the
/// minimum size c of the sample space, the steering strength alpha, the floor for non-positive weights, how forced prefix
/// tokens count, the vocabulary cut and whether to record a per-step trace. Sampling settings (temperature, top-k, top-p,
/// seeds, stops, max tokens) are the generator's <see cref="Generation.GenerationOptions"/>.
/// </summary>
public sealed record SafeDecodingOptions
{
    /// <summary>
    /// m: the number of leading response positions that are steered (j = 1..m); from j = m + 1 on the original model
    /// decodes alone. Default 2 (the paper's setting and the authors' <c>first_m</c> default). 0 turns SafeDecoding off
    /// (the scores are then the original model's at every step). Must be non-negative.
    /// </summary>
    public int M { get; init; } = 2;

    /// <summary>
    /// c: the sample space at a steered step is the intersection of both models' top-k tokens for the smallest k (at
    /// least c) whose intersection holds at least c tokens. Default 5 (the paper's c and the authors'
    /// <c>num_common_tokens</c> default; their <c>top_k = 10</c> only sets how many candidates are logged). Must be at
    /// least 1 and at most the scored vocabulary.
    /// </summary>
    public int MinCommonTokens { get; init; } = 5;

    /// <summary>
    /// alpha: the weight of a token v of the sample space is <c>p_orig(v) + alpha (p_expert(v) - p_orig(v))</c>.
    /// Default 3 (the paper's setting and the authors' default). 0 keeps the original model's probabilities (restricted to
    /// the sample space), 1 uses the expert's. Must be finite and non-negative.
    /// </summary>
    public double Alpha { get; init; } = 3.0;

    /// <summary>
    /// The weight given to a sample-space token whose mixed weight is zero or negative (possible for alpha &gt; 1), before
    /// normalisation. Default 1e-8, as in the authors' code. Must lie in (0, 1].
    /// </summary>
    public double ProbabilityFloor { get; init; } = 1e-8;

    /// <summary>
    /// Whether forced response prefix tokens count toward the first <see cref="M"/> tokens. True (default, as every
    /// position-dependent rule of the library): the steered window is response positions j = 1..m, so a prefilling
    /// attack that forces at least m tokens is never steered. False: the first m tokens the decoder chooses itself are
    /// steered, whatever the length of the forced prefix (a variant; the paper has no forced prefixes).
    /// </summary>
    public bool CountForcedPrefix { get; init; } = true;

    /// <summary>
    /// Tokenizer vocabulary size when the models' logits are wider (both models' logits are cut to it before
    /// log-softmax). Null keeps the full width, which then must be the same for both models.
    /// </summary>
    public int? VocabSize { get; init; }

    /// <summary>
    /// Records a <see cref="SafeDecodingTraceEntry"/> per row and generated token (reported as
    /// <see cref="Generation.GeneratedToken.Info"/> when streaming and kept in <see cref="SafeDecodingScorer.LastTrace"/>).
    /// Costs one small host copy per step. Default false.
    /// </summary>
    public bool Trace { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public SafeDecodingOptions Validate()
    {
        if (M < 0) throw new ArgumentException($"SafeDecodingOptions.M must be non-negative (got {M}); 0 turns SafeDecoding off.", nameof(M));
        if (MinCommonTokens < 1)
            throw new ArgumentException($"SafeDecodingOptions.MinCommonTokens must be at least 1 (got {MinCommonTokens}).", nameof(MinCommonTokens));
        if (!double.IsFinite(Alpha) || Alpha < 0)
            throw new ArgumentException($"SafeDecodingOptions.Alpha must be a finite non-negative number (got {Alpha}).", nameof(Alpha));
        if (!(ProbabilityFloor > 0 && ProbabilityFloor <= 1))
            throw new ArgumentException($"SafeDecodingOptions.ProbabilityFloor must lie in (0, 1] (got {ProbabilityFloor}).", nameof(ProbabilityFloor));
        if (VocabSize is < 1) throw new ArgumentException($"SafeDecodingOptions.VocabSize must be at least 1 when set (got {VocabSize}).", nameof(VocabSize));
        return this;
    }
}
