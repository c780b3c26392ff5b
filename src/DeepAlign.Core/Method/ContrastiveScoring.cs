using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// Contrastive token scores of docs/method.md section 2 over float32 log-probabilities of the aligned (expert) and base
/// (amateur) models, <c>[N, V]</c>, computed without gradient on the aligned input's device.
/// </summary>
public static class ContrastiveScoring
{
    /// <summary>
    /// ln of the smallest normal float32 (about -87.34): the lowest log-probability the contrast term uses, so a
    /// probability of exactly zero gives a large but finite contrast instead of an infinite one.
    /// </summary>
    public const double LogProbabilityFloor = -87.33654475055310898657;

    // Cached, always reachable Scalar (no implicit Scalars in hot paths; see Runtime/Scalars.cs).
    private static readonly Scalar Floor = LogProbabilityFloor.ToScalar();

    /// <summary>The adaptive plausibility set P_j = { v : p_a(v) &gt;= beta * max_u p_a(u) } as a mask.</summary>
    /// <param name="alignedLogProbs">l_a, <c>[..., V]</c>.</param>
    /// <param name="plausibilityBeta">beta_cd in [0, 1]; 0 gives the full vocabulary.</param>
    /// <returns><c>[..., V]</c> bool, true inside P_j (always contains the aligned model's argmax).</returns>
    public static Tensor PlausibilityMask(Tensor alignedLogProbs, double plausibilityBeta)
    {
        ArgumentNullException.ThrowIfNull(alignedLogProbs);
        CheckBeta(plausibilityBeta);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var pa = alignedLogProbs.exp();
        var max = pa.amax([-1], keepdim: true);
        using var beta = plausibilityBeta.ToScalar();
        return pa.ge(max.mul(beta)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Contrastive scores with per-row alpha: for v in P_j, "full" s(v) = l_a(v) + alpha (l_a(v) - l_b(v)),
    /// "base-favored only" s(v) = l_a(v) - alpha max(0, l_b(v) - l_a(v)); -inf outside P_j. Rows with alpha = 0 are
    /// exactly l_a (then masked), and with <paramref name="plausibilityBeta"/> = 0 no mask is applied, so alpha = 0,
    /// beta = 0 returns l_a bit for bit.
    /// </summary>
    /// <param name="alignedLogProbs">l_a, <c>[..., V]</c> float32.</param>
    /// <param name="baseLogProbs">l_b, same shape (copied to l_a's device if needed).</param>
    /// <param name="alpha">alpha_j, <c>[...]</c> (one per row) or a scalar tensor; finite, &gt;= 0.</param>
    /// <param name="rule">Scoring rule.</param>
    /// <param name="plausibilityBeta">beta_cd in [0, 1].</param>
    /// <returns>Scores <c>[..., V]</c> float32.</returns>
    public static Tensor Scores(Tensor alignedLogProbs, Tensor baseLogProbs, Tensor alpha, ContrastiveRule rule, double plausibilityBeta)
    {
        PositionStatistics.CheckPair(alignedLogProbs, baseLogProbs, nameof(alignedLogProbs), nameof(baseLogProbs));
        ArgumentNullException.ThrowIfNull(alpha);
        CheckBeta(plausibilityBeta);
        if (!Enum.IsDefined(rule)) throw new ArgumentException($"Unknown rule {(int)rule}.", nameof(rule));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var la = alignedLogProbs;
        var lb = PositionStatistics.OnDevice(baseLogProbs, la.device);
        var a = PositionStatistics.OnDevice(alpha, la.device).to_type(la.dtype);
        if (a.dim() > 0)
        {
            if (!a.shape.SequenceEqual(la.shape[..^1]))
                throw new ArgumentException(
                    $"alpha shape [{string.Join(", ", a.shape)}] must be one value per row [{string.Join(", ", la.shape[..^1])}] or a scalar.", nameof(alpha));
            a = a.unsqueeze(-1);
        }
        // A log-probability of -inf (a model giving a token exactly zero probability) would make the contrast
        // infinite (+inf scores, NaN after softmax) or undefined (-inf - -inf). The contrast therefore treats
        // log p below ln(smallest normal float32) as that value; l_a itself is left untouched, so a token the
        // aligned model rules out stays at -inf. Realistic fp32 log-probabilities never reach the floor.
        var laC = la.clamp_min(Floor);
        var lbC = lb.clamp_min(Floor);
        var contrast = rule == ContrastiveRule.Full ? laC - lbC : (lbC - laC).clamp_min(Scalars.ZeroDouble).neg();
        var s = la.add(a * contrast, Scalars.One); // la + a * contrast
        // Rows with alpha = 0 take l_a itself (0 * inf would otherwise give NaN where a model assigns -inf).
        s = MetaFallback.Where(a.eq(Scalars.Zero), la, s); // torch.where (off the meta device)
        if (plausibilityBeta > 0)
            s = s.masked_fill(PlausibilityMask(la, plausibilityBeta).bitwise_not(), Scalars.NegativeInfinity); // = logical_not on bool, with a meta kernel
        return s.MoveToOuterDisposeScope();
    }

    /// <summary>Contrastive scores with one alpha for every row (see the tensor overload).</summary>
    /// <param name="alignedLogProbs">l_a, <c>[..., V]</c> float32.</param>
    /// <param name="baseLogProbs">l_b, same shape.</param>
    /// <param name="alpha">alpha, finite, &gt;= 0.</param>
    /// <param name="rule">Scoring rule.</param>
    /// <param name="plausibilityBeta">beta_cd in [0, 1].</param>
    /// <returns>Scores <c>[..., V]</c> float32.</returns>
    public static Tensor Scores(Tensor alignedLogProbs, Tensor baseLogProbs, double alpha, ContrastiveRule rule, double plausibilityBeta)
    {
        ArgumentNullException.ThrowIfNull(alignedLogProbs);
        if (!double.IsFinite(alpha) || alpha < 0) throw new ArgumentException($"alpha must be finite and >= 0 (got {alpha}).", nameof(alpha));
        using var a = tensor(alpha, ScalarType.Float32, alignedLogProbs.device);
        return Scores(alignedLogProbs, baseLogProbs, a, rule, plausibilityBeta);
    }

    /// <summary>
    /// One decoding step's scoring: U_j (only if the schedule uses it), alpha_j from the schedule, then
    /// <see cref="Scores(Tensor, Tensor, Tensor, ContrastiveRule, double)"/>.
    /// </summary>
    /// <param name="alignedLogProbs">l_a of the step, <c>[N, V]</c> float32.</param>
    /// <param name="baseLogProbs">l_b of the step, same shape.</param>
    /// <param name="positions">Response position j of each row (1-based), <c>[N]</c> int64.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <returns>Scores, alpha and U_j; dispose when done.</returns>
    public static ContrastiveStep Step(Tensor alignedLogProbs, Tensor baseLogProbs, Tensor positions, ContrastiveScoringOptions? options = null)
    {
        options = (options ?? new ContrastiveScoringOptions()).Validate();
        PositionStatistics.CheckPair(alignedLogProbs, baseLogProbs, nameof(alignedLogProbs), nameof(baseLogProbs));
        ArgumentNullException.ThrowIfNull(positions);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var pos = PositionStatistics.OnDevice(positions, alignedLogProbs.device);
        Tensor? u = null;
        if (options.Alpha.UsesIncompleteness)
            u = PositionStatistics.Incompleteness(alignedLogProbs, baseLogProbs, options.Incompleteness.Tau, options.Incompleteness.TopKBase);
        var alpha = options.Alpha.Compute(pos, u);
        var s = Scores(alignedLogProbs, baseLogProbs, alpha, options.Rule, options.PlausibilityBeta);
        return new ContrastiveStep(s.MoveToOuterDisposeScope(), alpha.MoveToOuterDisposeScope(), u?.MoveToOuterDisposeScope());
    }

    private static void CheckBeta(double beta)
    {
        if (!double.IsFinite(beta) || beta < 0 || beta > 1)
            throw new ArgumentException($"plausibilityBeta must be in [0, 1] (got {beta}).", nameof(beta));
    }
}
