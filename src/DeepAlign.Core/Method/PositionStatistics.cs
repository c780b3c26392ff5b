using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// The one shared implementation of the per-position quantities of docs/method.md sections 0 and 1, used by the
/// detector, the contrastive decoder and the targeted-completion trainer so they all compute the same numbers.
/// Every function works on float32 log-probabilities of shape <c>[N, V]</c> (N positions; any leading shape
/// <c>[..., V]</c> also works, the last dimension is the vocabulary) and returns new tensors on the device of the
/// aligned-model input (base-model inputs on another device are copied there).
/// </summary>
/// <remarks>
/// Conventions: <c>l_a</c> and <c>l_b</c> are <c>log_softmax</c> of the aligned and base models' logits, cut to the
/// tokenizer's vocabulary (<see cref="LogSoftmax"/>); KL uses <c>0 * log 0 = 0</c> (xlogy), never <c>log(0)</c>.
/// Quantities derived from the frozen models are computed without gradient.
/// </remarks>
public static class PositionStatistics
{
    /// <summary>
    /// float32 <c>log_softmax</c> over the last dimension, after cutting logits wider than the tokenizer to
    /// <paramref name="vocabSize"/> entries (docs/method.md section 0). Keeps the autograd graph, so it is also the
    /// student's log-probabilities in training.
    /// </summary>
    /// <param name="logits">Logits <c>[..., W]</c>, any floating dtype.</param>
    /// <param name="vocabSize">Tokenizer vocabulary size (1..W), or null to keep all W entries.</param>
    /// <returns>float32 log-probabilities <c>[..., vocabSize]</c>.</returns>
    /// <exception cref="ArgumentException">The logits are narrower than <paramref name="vocabSize"/> or not floating point.</exception>
    public static Tensor LogSoftmax(Tensor logits, long? vocabSize = null)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (!logits.is_floating_point())
            throw new ArgumentException($"logits must be floating point (got {logits.dtype}).", nameof(logits));
        if (logits.dim() < 1) throw new ArgumentException("logits must have a vocabulary dimension.", nameof(logits));
        long width = logits.shape[^1];
        using var scope = NewDisposeScope();
        var x = logits;
        if (vocabSize is long v)
        {
            if (v < 1 || v > width)
                throw new ArgumentException($"vocabSize {v} must be between 1 and the logits width {width}.", nameof(vocabSize));
            if (v < width) x = x.narrow(-1, 0, v);
        }
        if (x.dtype != ScalarType.Float32) x = x.to_type(ScalarType.Float32);
        return x.log_softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// KL(P || Q) = sum_v p(v) (log p(v) - log q(v)) per row, with terms where p(v) = 0 counted as 0. Differentiable
    /// in both arguments (the trainer uses it with a detached teacher as P and the student as Q).
    /// </summary>
    /// <param name="logP">log P, <c>[..., V]</c>.</param>
    /// <param name="logQ">log Q, same shape.</param>
    /// <returns>KL per row, <c>[...]</c>.</returns>
    public static Tensor KlDivergence(Tensor logP, Tensor logQ)
    {
        CheckPair(logP, logQ, nameof(logP), nameof(logQ));
        using var scope = NewDisposeScope();
        var lq = OnDevice(logQ, logP.device);
        var p = logP.exp();
        var zero = p.eq(Scalars.Zero);
        // Mask the difference itself (not only the product) so neither the value nor the gradient sees 0 * inf.
        var diff = (logP - lq).masked_fill(zero, Scalars.ZeroDouble);
        return (p * diff).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Log-probability of each row's target token: <c>logProbs[n, targets[n]]</c>. Differentiable.</summary>
    /// <param name="logProbs">Log-probabilities <c>[..., V]</c>.</param>
    /// <param name="targets">Token ids <c>[...]</c>, int64.</param>
    /// <returns>Log-probabilities <c>[...]</c>.</returns>
    /// <exception cref="ArgumentException">Shapes do not match or ids are not int64.</exception>
    public static Tensor TokenLogProbs(Tensor logProbs, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(logProbs);
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.dtype != ScalarType.Int64)
            throw new ArgumentException($"targets must be int64 (got {targets.dtype}).", nameof(targets));
        if (!targets.shape.SequenceEqual(logProbs.shape[..^1]))
            throw new ArgumentException(
                $"targets shape [{string.Join(", ", targets.shape)}] must equal the log-probabilities' leading shape [{string.Join(", ", logProbs.shape[..^1])}].",
                nameof(targets));
        using var scope = NewDisposeScope();
        var t = OnDevice(targets, logProbs.device);
        return logProbs.gather(-1, t.unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The base-favored set B_j = { v in TopK_kB(p_b) : l_b(v) - l_a(v) &gt; tau }, its masses m_b, m_a, the base's
    /// top-kB mass p_b(T_j) and the incompleteness score U_j = 1 - (m_b - m_a) / p_b(T_j) (docs/method.md section 1).
    /// Computed without gradient.
    /// </summary>
    /// <param name="alignedLogProbs">l_a, <c>[..., V]</c> float32.</param>
    /// <param name="baseLogProbs">l_b, same shape.</param>
    /// <param name="tau">Threshold (finite, &gt;= 0).</param>
    /// <param name="topKBase">kB (&gt;= 1; clipped to V).</param>
    /// <returns>The set in compact form (over T_j) with its masses and U_j; dispose it when done.</returns>
    public static BaseFavoredSet BaseFavored(Tensor alignedLogProbs, Tensor baseLogProbs, double tau = 0.0, int topKBase = 50)
    {
        CheckPair(alignedLogProbs, baseLogProbs, nameof(alignedLogProbs), nameof(baseLogProbs));
        if (!double.IsFinite(tau) || tau < 0) throw new ArgumentException($"tau must be finite and >= 0 (got {tau}).", nameof(tau));
        if (topKBase < 1) throw new ArgumentException($"topKBase must be >= 1 (got {topKBase}).", nameof(topKBase));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var lb = OnDevice(baseLogProbs, alignedLogProbs.device);
        long k = Math.Min(topKBase, alignedLogProbs.shape[^1]);
        var (lbTop, ids) = lb.topk((int)k, dim: -1, largest: true, sorted: true);
        var laTop = alignedLogProbs.gather(-1, ids);
        using var tauScalar = tau.ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
        var members = (lbTop - laTop).gt(tauScalar);
        var pbTop = lbTop.exp();
        var paTop = laTop.exp();
        // bitwise_not is logical_not on bool masks and, unlike it, has a meta kernel (Runtime/MetaFallback.cs).
        var massBase = pbTop.masked_fill(members.bitwise_not(), Scalars.ZeroDouble).sum(-1);
        var massAligned = paTop.masked_fill(members.bitwise_not(), Scalars.ZeroDouble).sum(-1);
        var topMass = pbTop.sum(-1);
        // 1.0 - x, computed as TorchSharp's operator does: (-x) + 1.0.
        var u = ((massBase - massAligned) / topMass).negative().add(Scalars.OneDouble, Scalars.One);
        return new BaseFavoredSet(
            ids.MoveToOuterDisposeScope(), members.MoveToOuterDisposeScope(),
            laTop.MoveToOuterDisposeScope(), lbTop.MoveToOuterDisposeScope(),
            massBase.MoveToOuterDisposeScope(), massAligned.MoveToOuterDisposeScope(),
            topMass.MoveToOuterDisposeScope(), u.MoveToOuterDisposeScope());
    }

    /// <summary>Incompleteness score U_j alone (see <see cref="BaseFavored"/>), without gradient.</summary>
    /// <param name="alignedLogProbs">l_a, <c>[..., V]</c> float32.</param>
    /// <param name="baseLogProbs">l_b, same shape.</param>
    /// <param name="tau">Threshold (finite, &gt;= 0).</param>
    /// <param name="topKBase">kB (&gt;= 1).</param>
    /// <returns>U_j, <c>[...]</c>, in [0, 1].</returns>
    public static Tensor Incompleteness(Tensor alignedLogProbs, Tensor baseLogProbs, double tau = 0.0, int topKBase = 50)
    {
        using var set = BaseFavored(alignedLogProbs, baseLogProbs, tau, topKBase);
        return set.Incompleteness.alias();
    }

    /// <summary>
    /// Every per-position quantity of the incompleteness profile at once (docs/method.md section 1), without gradient:
    /// KL(a||b), KL(b||a), B_j with m_b, m_a, U_j, the top members of B_j, and, when the realised tokens are given,
    /// r_j = l_b(y_j) - l_a(y_j) and the base-favored flag r_j &gt; tau.
    /// </summary>
    /// <param name="alignedLogProbs">l_a, <c>[..., V]</c> float32 (see <see cref="LogSoftmax"/>).</param>
    /// <param name="baseLogProbs">l_b, same shape.</param>
    /// <param name="targets">Realised tokens y_j, <c>[...]</c> int64, or null.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <returns>The statistics; dispose when done.</returns>
    public static PositionStatisticsResult Compute(Tensor alignedLogProbs, Tensor baseLogProbs, Tensor? targets = null, IncompletenessOptions? options = null)
    {
        options = (options ?? new IncompletenessOptions()).Validate();
        CheckPair(alignedLogProbs, baseLogProbs, nameof(alignedLogProbs), nameof(baseLogProbs));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var la = alignedLogProbs;
        var lb = OnDevice(baseLogProbs, la.device);
        var (klAB, klBA) = KlBothWays(la, lb);
        Tensor? ratio = null, flag = null;
        if (targets is not null)
        {
            ratio = TokenLogProbs(lb, targets) - TokenLogProbs(la, targets);
            using var tau = options.Tau.ToScalar();
            flag = ratio.gt(tau);
        }
        var set = BaseFavored(la, lb, options.Tau, options.TopKBase);
        long m = Math.Min(options.ReportTopItems, set.TopIds.shape[^1]);
        Tensor itemIds, itemPb, itemPa, itemValid;
        if (m > 0)
        {
            // T_j is sorted by p_b, so the top members of B_j are the members with the highest l_b.
            var key = set.LogBase.masked_fill(set.Members.logical_not(), Scalars.NegativeInfinity);
            var (_, slot) = key.topk((int)m, dim: -1, largest: true, sorted: true);
            itemValid = set.Members.gather(-1, slot);
            itemIds = set.TopIds.gather(-1, slot);
            itemPb = set.LogBase.gather(-1, slot).exp().masked_fill(itemValid.logical_not(), Scalars.ZeroDouble);
            itemPa = set.LogAligned.gather(-1, slot).exp().masked_fill(itemValid.logical_not(), Scalars.ZeroDouble);
            itemIds = itemIds.masked_fill(itemValid.logical_not(), Scalars.MinusOne);
        }
        else
        {
            long[] shape = [.. la.shape[..^1], 0];
            itemIds = empty(shape, ScalarType.Int64, la.device);
            itemPb = empty(shape, ScalarType.Float32, la.device);
            itemPa = empty(shape, ScalarType.Float32, la.device);
            itemValid = empty(shape, ScalarType.Bool, la.device);
        }
        set.MoveToOuterDisposeScope();
        return new PositionStatisticsResult(
            klAB.MoveToOuterDisposeScope(), klBA.MoveToOuterDisposeScope(),
            ratio?.MoveToOuterDisposeScope(), flag?.MoveToOuterDisposeScope(), set,
            itemIds.MoveToOuterDisposeScope(), itemPb.MoveToOuterDisposeScope(),
            itemPa.MoveToOuterDisposeScope(), itemValid.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// KL(a||b) and KL(b||a) without gradient, sharing one difference tensor: sum_v p_a (l_a - l_b) and
    /// -sum_v p_b (l_a - l_b) (about half the memory traffic of two <see cref="KlDivergence"/> calls). When a
    /// log-probability is -inf (a zero-probability token, where the product gives NaN) the rows are recomputed with the
    /// masked form of <see cref="KlDivergence"/>; otherwise the results are bit-identical to it.
    /// </summary>
    internal static (Tensor AlignedBase, Tensor BaseAligned) KlBothWays(Tensor la, Tensor lb)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var diff = la - lb;
        var ab = (la.exp() * diff).sum(-1);
        var ba = (lb.exp() * diff).sum(-1).neg_();
        if (ab.isnan().any().item<bool>() || ba.isnan().any().item<bool>())
        {
            ab = KlDivergence(la, lb);
            ba = KlDivergence(lb, la);
        }
        return (ab.MoveToOuterDisposeScope(), ba.MoveToOuterDisposeScope());
    }

    internal static void CheckPair(Tensor a, Tensor b, string nameA, string nameB)
    {
        ArgumentNullException.ThrowIfNull(a, nameA);
        ArgumentNullException.ThrowIfNull(b, nameB);
        if (!a.is_floating_point()) throw new ArgumentException($"{nameA} must be floating point (got {a.dtype}).", nameA);
        if (a.dtype != b.dtype) throw new ArgumentException($"{nameA} ({a.dtype}) and {nameB} ({b.dtype}) must have the same dtype.", nameB);
        if (a.dim() < 1 || !a.shape.SequenceEqual(b.shape))
            throw new ArgumentException(
                $"{nameA} [{string.Join(", ", a.shape)}] and {nameB} [{string.Join(", ", b.shape)}] must have the same shape [..., V]; cut logits to the tokenizer's vocabulary first.",
                nameB);
    }

    internal static Tensor OnDevice(Tensor t, Device device)
        => t.device_type == device.type && t.device_index == device.index ? t : t.to(device);
}
