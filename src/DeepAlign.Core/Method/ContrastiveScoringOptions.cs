namespace DeepAlign.Method;

/// <summary>
/// Options of contrastive scoring (docs/method.md section 2). The contrastive decoder and the hybrid teacher read them.
/// </summary>
public sealed record ContrastiveScoringOptions
{
    /// <summary>Scoring rule; default <see cref="ContrastiveRule.Full"/> (docs/method.md; our choice).</summary>
    public ContrastiveRule Rule { get; init; } = ContrastiveRule.Full;

    /// <summary>
    /// beta_cd of the adaptive plausibility set P_j = { v : p_a(v) &gt;= beta_cd * max_u p_a(u) }; tokens outside get
    /// score -inf. Default 0.1 (docs/method.md; our choice, after Li et al.'s contrastive decoding). 0 disables the cut.
    /// Must be in [0, 1].
    /// </summary>
    public double PlausibilityBeta { get; init; } = 0.1;

    /// <summary>
    /// Schedule of alpha_j; default <see cref="ConstantAlpha"/> with alpha = 1.0 (docs/method.md; our choice). The built-in
    /// schedules are validated by <see cref="Validate"/>; a user-supplied <see cref="IAlphaSchedule"/> validates itself.
    /// </summary>
    public IAlphaSchedule Alpha { get; init; } = new ConstantAlpha();

    /// <summary>
    /// tau and kB used for U_j when the schedule needs it (<see cref="IAlphaSchedule.UsesIncompleteness"/>);
    /// default the profile's defaults (tau 0, kB 50).
    /// </summary>
    public IncompletenessOptions Incompleteness { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public ContrastiveScoringOptions Validate()
    {
        if (!Enum.IsDefined(Rule)) throw new ArgumentException($"ContrastiveScoringOptions.Rule has an unknown value {(int)Rule}.", nameof(Rule));
        if (!double.IsFinite(PlausibilityBeta) || PlausibilityBeta < 0 || PlausibilityBeta > 1)
            throw new ArgumentException($"ContrastiveScoringOptions.PlausibilityBeta must be in [0, 1] (got {PlausibilityBeta}).", nameof(PlausibilityBeta));
        if (Alpha is null) throw new ArgumentException("ContrastiveScoringOptions.Alpha must not be null.", nameof(Alpha));
        switch (Alpha)
        {
            case ConstantAlpha c: c.Validate(); break;
            case LinearRampAlpha r: r.Validate(); break;
            case IncompletenessDrivenAlpha i: i.Validate(); break;
        }
        if (Incompleteness is null) throw new ArgumentException("ContrastiveScoringOptions.Incompleteness must not be null.", nameof(Incompleteness));
        Incompleteness.Validate();
        return this;
    }
}
