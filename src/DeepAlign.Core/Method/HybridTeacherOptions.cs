namespace DeepAlign.Method;

/// <summary>Options of the hybrid teacher q_j of targeted completion (docs/method.md section 3).</summary>
public sealed record HybridTeacherOptions
{
    /// <summary>
    /// g_max: the mixing weight is g_j = g_max * U_j. Default 0.5 (docs/method.md; our choice, the paper's summary gives
    /// no value). In [0, 1].
    /// </summary>
    public double MaxMix { get; init; } = 0.5;

    /// <summary>
    /// When set, a constant mixing weight g used at every position instead of g_max * U_j (docs/method.md option).
    /// Default null (incompleteness-driven). In [0, 1].
    /// </summary>
    public double? ConstantMix { get; init; }

    /// <summary>alpha of the "full" contrastive rule inside the teacher; default 1.0 (docs/method.md; our choice). Finite, &gt;= 0.</summary>
    public double TeacherAlpha { get; init; } = 1.0;

    /// <summary>beta_cd of the plausibility set P_j inside the teacher; default 0.1 (as for decoding; our choice). In [0, 1].</summary>
    public double PlausibilityBeta { get; init; } = 0.1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public HybridTeacherOptions Validate()
    {
        if (!double.IsFinite(MaxMix) || MaxMix < 0 || MaxMix > 1)
            throw new ArgumentException($"HybridTeacherOptions.MaxMix must be in [0, 1] (got {MaxMix}).", nameof(MaxMix));
        if (ConstantMix is double g && (!double.IsFinite(g) || g < 0 || g > 1))
            throw new ArgumentException($"HybridTeacherOptions.ConstantMix must be in [0, 1] (got {g}).", nameof(ConstantMix));
        if (!double.IsFinite(TeacherAlpha) || TeacherAlpha < 0)
            throw new ArgumentException($"HybridTeacherOptions.TeacherAlpha must be finite and >= 0 (got {TeacherAlpha}).", nameof(TeacherAlpha));
        if (!double.IsFinite(PlausibilityBeta) || PlausibilityBeta < 0 || PlausibilityBeta > 1)
            throw new ArgumentException($"HybridTeacherOptions.PlausibilityBeta must be in [0, 1] (got {PlausibilityBeta}).", nameof(PlausibilityBeta));
        return this;
    }
}
