namespace DeepAlign.Method.Contrastive;

/// <summary>
/// Options of the <see cref="ContrastiveDecoder"/> (docs/method.md section 2): the scoring rule, the alpha schedule, the
/// plausibility cut beta_cd, the vocabulary cut and whether to record a per-step trace. Sampling settings
/// (temperature, top-k, top-p, seeds, stops, max tokens) are the generator's <see cref="Generation.GenerationOptions"/>.
/// </summary>
public sealed record ContrastiveDecoderOptions
{
    /// <summary>Scoring rule; default <see cref="ContrastiveRule.Full"/> (docs/method.md section 2; our choice).</summary>
    public ContrastiveRule Rule { get; init; } = ContrastiveRule.Full;

    /// <summary>
    /// Schedule of alpha_j over the response position j (which counts forced prefix tokens); default
    /// <see cref="ConstantAlpha"/> with alpha = 1.0 (docs/method.md section 2; our choice, the paper's summary gives no value).
    /// Implement <see cref="IAlphaSchedule"/> for your own schedule.
    /// </summary>
    public IAlphaSchedule Alpha { get; init; } = new ConstantAlpha();

    /// <summary>
    /// beta_cd of the adaptive plausibility set P_j = { v : p_a(v) &gt;= beta_cd max_u p_a(u) }; tokens outside get
    /// score -inf. Default 0.1 (docs/method.md section 2; our choice, after Li et al.'s contrastive decoding); 0 disables
    /// the cut. Must lie in [0, 1].
    /// </summary>
    public double PlausibilityBeta { get; init; } = 0.1;

    /// <summary>
    /// tau and kB of the incompleteness score U_j, used by <see cref="IncompletenessDrivenAlpha"/> and by the trace;
    /// default the profile's defaults (tau = 0, kB = 50; docs/method.md section 1).
    /// </summary>
    public IncompletenessOptions Incompleteness { get; init; } = new();

    /// <summary>
    /// Tokenizer vocabulary size when the models' logits are wider (both models' logits are cut to it before
    /// log-softmax, docs/method.md section 0). Null keeps the full width, which then must be the same for both models.
    /// </summary>
    public int? VocabSize { get; init; }

    /// <summary>
    /// Records a <see cref="ContrastiveTraceEntry"/> per row and step (reported as <see cref="Generation.GeneratedToken.Info"/>
    /// when streaming and kept in <see cref="ContrastiveScorer.LastTrace"/>). Costs one extra host copy per step.
    /// Default false.
    /// </summary>
    public bool Trace { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public ContrastiveDecoderOptions Validate()
    {
        if (!Enum.IsDefined(Rule))
            throw new ArgumentException($"ContrastiveDecoderOptions.Rule has an unknown value {(int)Rule}.", nameof(Rule));
        if (Alpha is null) throw new ArgumentException("ContrastiveDecoderOptions.Alpha must not be null.", nameof(Alpha));
        if (!double.IsFinite(PlausibilityBeta) || PlausibilityBeta < 0 || PlausibilityBeta > 1)
            throw new ArgumentException($"ContrastiveDecoderOptions.PlausibilityBeta must be in [0, 1] (got {PlausibilityBeta}).", nameof(PlausibilityBeta));
        if (Incompleteness is null) throw new ArgumentException("ContrastiveDecoderOptions.Incompleteness must not be null.", nameof(Incompleteness));
        if (VocabSize is < 1) throw new ArgumentException($"ContrastiveDecoderOptions.VocabSize must be at least 1 when set (got {VocabSize}).", nameof(VocabSize));
        ToScoringOptions().Validate();
        return this;
    }

    /// <summary>The scoring part of these options, as <see cref="ContrastiveScoring.Step"/> takes it.</summary>
    /// <returns>Rule, beta_cd, schedule and incompleteness options.</returns>
    public ContrastiveScoringOptions ToScoringOptions() => new()
    {
        Rule = Rule,
        PlausibilityBeta = PlausibilityBeta,
        Alpha = Alpha,
        Incompleteness = Incompleteness,
    };
}
