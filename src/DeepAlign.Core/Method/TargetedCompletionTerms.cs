using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// The per-position terms of the targeted-completion loss (docs/method.md section 3). Teacher-side quantities (q_j, B_j,
/// c_j, w_j) are computed without gradient; the student terms are differentiable in the student's log-probabilities
/// (and, through <see cref="PositionStatistics.LogSoftmax"/>, in its logits). Every term returns one value per
/// position, <c>[N]</c>; the trainer takes token-weighted means.
/// </summary>
public static class TargetedCompletionTerms
{
    /// <summary>Mixing weights g_j = g_max * U_j, or the constant g when <see cref="HybridTeacherOptions.ConstantMix"/> is set.</summary>
    /// <param name="incompleteness">U_j, <c>[N]</c>.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <returns>g_j, <c>[N]</c> float32.</returns>
    public static Tensor MixWeights(Tensor incompleteness, HybridTeacherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(incompleteness);
        options = (options ?? new HybridTeacherOptions()).Validate();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var u = incompleteness.to_type(ScalarType.Float32);
        // Explicit Scalars only (Runtime/Scalars.cs).
        Tensor g;
        if (options.ConstantMix is double c)
        {
            using var value = c.ToScalar();
            g = full_like(u, value);
        }
        else
        {
            using var maxMix = options.MaxMix.ToScalar();
            g = u.mul(maxMix);
        }
        return g.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The hybrid teacher q_j = (1 - g_j) p_a + g_j softmax(s_j), where s_j is the "full" contrastive rule with
    /// alpha = <see cref="HybridTeacherOptions.TeacherAlpha"/> on the plausibility set P_j. Without gradient.
    /// </summary>
    /// <param name="alignedLogProbs">l_a, <c>[N, V]</c> float32.</param>
    /// <param name="baseLogProbs">l_b, same shape.</param>
    /// <param name="mixWeights">g_j, <c>[N]</c> in [0, 1] (see <see cref="MixWeights"/>).</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <returns>q_j as probabilities, <c>[N, V]</c> float32 (rows sum to 1; equal p_a where g_j = 0).</returns>
    public static Tensor HybridTeacher(Tensor alignedLogProbs, Tensor baseLogProbs, Tensor mixWeights, HybridTeacherOptions? options = null)
    {
        options = (options ?? new HybridTeacherOptions()).Validate();
        PositionStatistics.CheckPair(alignedLogProbs, baseLogProbs, nameof(alignedLogProbs), nameof(baseLogProbs));
        ArgumentNullException.ThrowIfNull(mixWeights);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var la = alignedLogProbs.detach();
        var g = PositionStatistics.OnDevice(mixWeights, la.device).to_type(ScalarType.Float32);
        if (!g.shape.SequenceEqual(la.shape[..^1]))
            throw new ArgumentException($"mixWeights shape [{string.Join(", ", g.shape)}] must be one value per row [{string.Join(", ", la.shape[..^1])}].", nameof(mixWeights));
        g = g.unsqueeze(-1);
        var s = ContrastiveScoring.Scores(la, baseLogProbs.detach(), options.TeacherAlpha, ContrastiveRule.Full, options.PlausibilityBeta);
        // (1.0 - g) * p_a + g * softmax(s), with the ops TorchSharp's operators use ((-g) + 1.0) but explicit Scalars.
        var q = g.negative().add(Scalars.OneDouble, Scalars.One).mul(la.exp()).add(g * s.softmax(-1), Scalars.One);
        return q.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// KL(q_j || pi_theta) = sum_v q(v) (log q(v) - log pi_theta(v)) per position, with q(v) = 0 terms counted as 0.
    /// Differentiable in the student (gradient w.r.t. the student's logits: pi_theta - q); the teacher is detached.
    /// </summary>
    /// <param name="teacherProbs">q_j, <c>[N, V]</c> probabilities (e.g. <see cref="HybridTeacher"/>).</param>
    /// <param name="studentLogProbs">log pi_theta, <c>[N, V]</c> float32.</param>
    /// <returns><c>[N]</c>.</returns>
    public static Tensor DistillationKl(Tensor teacherProbs, Tensor studentLogProbs)
    {
        PositionStatistics.CheckPair(studentLogProbs, teacherProbs, nameof(studentLogProbs), nameof(teacherProbs));
        using var scope = NewDisposeScope();
        var q = PositionStatistics.OnDevice(teacherProbs.detach(), studentLogProbs.device);
        var zero = q.eq(Scalars.Zero);
        var diff = (q.log() - studentLogProbs).masked_fill(zero, Scalars.ZeroDouble);
        return (q * diff).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Penalty costs c_j(v) = 1 - exp(l_a(v) - l_b(v)) on the members of B_j (in (0, 1) for tau &gt;= 0), 0 for the
    /// other entries of T_j. Without gradient.
    /// </summary>
    /// <param name="set">B_j from <see cref="PositionStatistics.BaseFavored"/>.</param>
    /// <returns><c>[N, K]</c> aligned with <see cref="BaseFavoredSet.TopIds"/>.</returns>
    public static Tensor PenaltyCosts(BaseFavoredSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var c = (set.LogAligned - set.LogBase).exp().negative().add(Scalars.OneDouble, Scalars.One); // 1.0 - p_a / p_b
        return c.masked_fill(set.Members.bitwise_not(), Scalars.ZeroDouble).MoveToOuterDisposeScope(); // = logical_not on bool, with a meta kernel
    }

    /// <summary>
    /// Adaptive base-favored penalty Pen_j = w_j * sum_{v in B_j} p_theta(v) c_j(v) per position. Differentiable in
    /// the student; B_j, c_j and w_j are constants.
    /// </summary>
    /// <param name="studentLogProbs">log pi_theta, <c>[N, V]</c> float32.</param>
    /// <param name="set">B_j computed from the frozen aligned and base models at the same positions.</param>
    /// <param name="positionWeights">w_j, <c>[N]</c> (see <see cref="PositionWeights"/>).</param>
    /// <returns><c>[N]</c>.</returns>
    public static Tensor Penalty(Tensor studentLogProbs, BaseFavoredSet set, Tensor positionWeights)
    {
        ArgumentNullException.ThrowIfNull(studentLogProbs);
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(positionWeights);
        if (!set.TopIds.shape[..^1].SequenceEqual(studentLogProbs.shape[..^1]))
            throw new ArgumentException("The base-favored set was computed for a different number of positions than the student's log-probabilities.", nameof(set));
        if (!positionWeights.shape.SequenceEqual(studentLogProbs.shape[..^1]))
            throw new ArgumentException($"positionWeights shape [{string.Join(", ", positionWeights.shape)}] must be one value per position.", nameof(positionWeights));
        using var scope = NewDisposeScope();
        var dev = studentLogProbs.device;
        var c = PenaltyCosts(set);
        c = PositionStatistics.OnDevice(c, dev);
        var ids = PositionStatistics.OnDevice(set.TopIds, dev);
        var w = PositionStatistics.OnDevice(positionWeights.detach(), dev).to_type(ScalarType.Float32);
        var pTheta = studentLogProbs.gather(-1, ids).exp();
        return ((pTheta * c).sum(-1) * w).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Utility anchor KL(pi_a || pi_theta) per position (benign data). Differentiable in the student; the aligned
    /// model is detached.
    /// </summary>
    /// <param name="alignedLogProbs">l_a, <c>[N, V]</c> float32.</param>
    /// <param name="studentLogProbs">log pi_theta, same shape.</param>
    /// <returns><c>[N]</c>.</returns>
    public static Tensor UtilityKl(Tensor alignedLogProbs, Tensor studentLogProbs)
    {
        ArgumentNullException.ThrowIfNull(alignedLogProbs);
        ArgumentNullException.ThrowIfNull(studentLogProbs);
        using var scope = NewDisposeScope();
        var la = PositionStatistics.OnDevice(alignedLogProbs.detach(), studentLogProbs.device);
        return PositionStatistics.KlDivergence(la, studentLogProbs).MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy -log pi_theta(y_j) per position. Differentiable.</summary>
    /// <param name="studentLogProbs">log pi_theta, <c>[N, V]</c> float32.</param>
    /// <param name="targets">y_j, <c>[N]</c> int64.</param>
    /// <returns><c>[N]</c>.</returns>
    public static Tensor CrossEntropy(Tensor studentLogProbs, Tensor targets)
    {
        using var scope = NewDisposeScope();
        return PositionStatistics.TokenLogProbs(studentLogProbs, targets).neg().MoveToOuterDisposeScope();
    }
}
