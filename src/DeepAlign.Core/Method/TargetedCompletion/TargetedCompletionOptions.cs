namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// Every term, weight and default of the targeted-completion objective (docs/method.md section 3). Immutable; call
/// <see cref="Validate"/> (the objective and the trainer do). Each property says where its default comes from: the
/// paper (Bach et al. 2025), Qi et al. (2025), or our choice where the paper's summary leaves it open.
/// </summary>
public sealed record TargetedCompletionOptions
{
    /// <summary>
    /// p0: probability that a safety-recovery context has no harmful prefix (K_pre = 0). Default 0.5 (Qi et al.'s
    /// data augmentation, docs/method.md section 3). In [0, 1].
    /// </summary>
    public double NoPrefixProbability { get; init; } = 0.5;

    /// <summary>
    /// K_max: otherwise K_pre is uniform on 1..min(K_max, |h|). Default 100 (Qi et al.; docs/method.md section 3). &gt;= 1.
    /// </summary>
    public int MaxPrefixLength { get; init; } = 100;

    /// <summary>
    /// lambda_kd, weight of KL(q_j || pi_theta) on the safe-response tokens. Default 1 (docs/method.md; our choice, the
    /// paper's summary gives no value). Finite, &gt;= 0.
    /// </summary>
    public double DistillationWeight { get; init; } = 1.0;

    /// <summary>
    /// lambda_pen, weight of the adaptive base-favored penalty. Default 1 (docs/method.md; our choice). Finite, &gt;= 0.
    /// </summary>
    public double PenaltyWeight { get; init; } = 1.0;

    /// <summary>
    /// lambda_util, weight of the utility anchor on benign tokens. Default 1 (docs/method.md; our choice). Finite, &gt;= 0.
    /// </summary>
    public double UtilityWeight { get; init; } = 1.0;

    /// <summary>What the utility anchor measures. Default <see cref="TargetedCompletion.UtilityAnchor.AlignedKl"/> (docs/method.md; the paper's "utility anchor").</summary>
    public UtilityAnchor UtilityAnchor { get; init; } = UtilityAnchor.AlignedKl;

    /// <summary>
    /// Hybrid teacher q_j = (1 - g_j) p_a + g_j softmax(s_j), g_j = g_max U_j: g_max 0.5, teacher alpha 1.0,
    /// plausibility beta 0.1 (docs/method.md; our choices). A constant g is an option there.
    /// </summary>
    public HybridTeacherOptions Teacher { get; init; } = new();

    /// <summary>
    /// tau and kB of the base-favored sets B_j and of U_j: tau = 0 (the paper: "assigns higher probability"),
    /// kB = 50 (docs/method.md; our choice).
    /// </summary>
    public IncompletenessOptions Incompleteness { get; init; } = new();

    /// <summary>
    /// Position weights w_j of the penalty: rho 0.5, w_max 4, fallback ramp length 32 (docs/method.md; our choices).
    /// </summary>
    public PositionWeightOptions PositionWeights { get; init; } = new();

    /// <summary>
    /// Mean gradient norms n_1..n_J of the gradient signal probe (docs/method.md section 1), run on the aligned model over
    /// the harmful training data; w_j = min(w_max, (n_1 / n_j)^rho). Null (default): the ramp
    /// w_j = min(w_max, 1 + (j - 1) / 32).
    /// </summary>
    public IReadOnlyList<double>? ProbeNorms { get; init; }

    /// <summary>
    /// Harmful : benign mixing weights of every batch. Default 1 : 4 (Qi et al.'s 16 : 64; docs/method.md section 3).
    /// Both finite and &gt; 0.
    /// </summary>
    public double HarmfulShare { get; init; } = 1.0;

    /// <inheritdoc cref="HarmfulShare"/>
    public double BenignShare { get; init; } = 4.0;

    /// <summary>
    /// Tokenizer vocabulary size: logits wider than this are cut before log-softmax (docs/method.md section 0). Null
    /// (default) keeps the model's full width.
    /// </summary>
    public int? VocabularySize { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public TargetedCompletionOptions Validate()
    {
        static void Fail(string field, object? value, string rule) =>
            throw new ArgumentException($"TargetedCompletionOptions.{field} = {value}: {rule}.", field);
        if (!(NoPrefixProbability >= 0 && NoPrefixProbability <= 1)) Fail(nameof(NoPrefixProbability), NoPrefixProbability, "must be in [0, 1]");
        if (MaxPrefixLength < 1) Fail(nameof(MaxPrefixLength), MaxPrefixLength, "must be >= 1");
        CheckWeight(DistillationWeight, nameof(DistillationWeight));
        CheckWeight(PenaltyWeight, nameof(PenaltyWeight));
        CheckWeight(UtilityWeight, nameof(UtilityWeight));
        if (!Enum.IsDefined(UtilityAnchor)) Fail(nameof(UtilityAnchor), (int)UtilityAnchor, "is not a known value");
        if (Teacher is null) Fail(nameof(Teacher), "null", "must be set");
        if (Incompleteness is null) Fail(nameof(Incompleteness), "null", "must be set");
        if (PositionWeights is null) Fail(nameof(PositionWeights), "null", "must be set");
        Teacher!.Validate();
        Incompleteness!.Validate();
        PositionWeights!.Validate();
        if (ProbeNorms is not null)
        {
            if (ProbeNorms.Count == 0) Fail(nameof(ProbeNorms), "[]", "must hold at least n_1 (or be null for the ramp)");
            if (!(ProbeNorms[0] > 0) || double.IsInfinity(ProbeNorms[0])) Fail(nameof(ProbeNorms), ProbeNorms[0], "n_1 must be positive and finite");
            for (int i = 0; i < ProbeNorms.Count; i++)
                if (double.IsNaN(ProbeNorms[i]) || double.IsInfinity(ProbeNorms[i])) Fail($"{nameof(ProbeNorms)}[{i}]", ProbeNorms[i], "must be finite");
        }
        if (!(HarmfulShare > 0) || double.IsInfinity(HarmfulShare)) Fail(nameof(HarmfulShare), HarmfulShare, "must be positive and finite");
        if (!(BenignShare > 0) || double.IsInfinity(BenignShare)) Fail(nameof(BenignShare), BenignShare, "must be positive and finite");
        if (VocabularySize is <= 0) Fail(nameof(VocabularySize), VocabularySize, "must be positive (or null)");
        return this;

        static void CheckWeight(double v, string name)
        {
            if (!(v >= 0) || double.IsInfinity(v)) Fail(name, v, "must be finite and >= 0");
        }
    }
}
