using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method.SafeDecoding;

/// <summary>
/// The per-step SafeDecoding rule on two rows-by-vocabulary log-probability tensors (docs/safedecoding.md).
/// </summary>
internal static class SafeDecodingScoring
{
    /// <summary>
    /// Steered scores: the sample space is the top-k intersection of both models for the smallest k &gt;= c with at least
    /// c common tokens; inside it the score is <c>log w(v)</c> with <c>w = p_o + alpha (p_e - p_o)</c> (or the floor when
    /// w &lt;= 0), outside it negative infinity. <c>softmax</c> of the scores is the normalised SafeDecoding distribution.
    /// </summary>
    /// <param name="lo">float32 log-probabilities of the original model <c>[N, V]</c>.</param>
    /// <param name="le">float32 log-probabilities of the expert <c>[N, V]</c>, same device.</param>
    /// <param name="minCommon">c, in [1, V].</param>
    /// <param name="alpha">alpha &gt;= 0.</param>
    /// <param name="floor">Weight of tokens whose mixed weight is not positive.</param>
    /// <returns>float32 scores <c>[N, V]</c> and the intersection depth k of every row (int64 <c>[N]</c>), in the caller's dispose scope.</returns>
    /// <remarks>
    /// Ranks are 0-based positions in a stable descending sort (ties in token-id order). A token lies in the top-k of
    /// both models iff <c>r(v) = max(rank_o(v), rank_e(v)) &lt; k</c>, so |top-k intersection| = #{v : r(v) &lt; k}.
    /// With r_(c) the c-th smallest r, the smallest k &gt;= c with at least c common tokens is <c>r_(c) + 1</c> (at most
    /// t + 1 tokens have rank_o &lt;= t, so r_(c) &gt;= c - 1), and the sample space is { v : r(v) &lt;= r_(c) }: the set
    /// the authors' loop (k = c, c + 1, ... until the intersection has c tokens) ends with, found without the loop.
    /// The weight is computed in float64 as <c>log w = l_o + log1p(alpha expm1(l_e - l_o))</c> (the same number as
    /// <c>log(p_o + alpha (p_e - p_o))</c>; at alpha = 0 it is l_o bit for bit), and as <c>log(alpha p_e)</c> where
    /// p_o = 0.
    /// </remarks>
    internal static (Tensor Scores, Tensor Depth) Steer(Tensor lo, Tensor le, int minCommon, double alpha, double floor)
    {
        ArgumentNullException.ThrowIfNull(lo);
        ArgumentNullException.ThrowIfNull(le);
        if (lo.dim() != 2 || !lo.shape.SequenceEqual(le.shape))
            throw new ArgumentException($"Both log-probability tensors must be [N, V] of one shape; got [{string.Join(", ", lo.shape)}] and [{string.Join(", ", le.shape)}].", nameof(le));
        long vocab = lo.shape[1];
        if (minCommon < 1 || minCommon > vocab)
            throw new ArgumentOutOfRangeException(nameof(minCommon), minCommon, $"c must lie in [1, {vocab}] (the scored vocabulary).");

        using var scope = NewDisposeScope();
        // Sample space.
        var r = maximum(Ranks(lo), Ranks(le));
        var (smallest, _) = r.topk(minCommon, dim: -1, largest: false, sorted: true);
        var threshold = smallest.narrow(-1, minCommon - 1, 1);                       // r_(c), [N, 1]
        var outside = r.gt(threshold);
        var depth = threshold.squeeze(-1).add(Scalars.One, Scalars.One);

        // Weights w = p_o + alpha (p_e - p_o), in log space, float64.
        var lo64 = lo.to(ScalarType.Float64);
        var le64 = le.to(ScalarType.Float64);
        using var alphaScalar = alpha.ToScalar();
        using var floorLog = Math.Log(floor).ToScalar();
        using var minusOne = (-1.0).ToScalar();
        var inner = le64.sub(lo64).expm1().mul(alphaScalar);                         // w / p_o - 1 where p_o > 0
        var ratioForm = lo64.add(inner.log1p(), Scalars.One).masked_fill(inner.gt(minusOne).logical_not(), floorLog);
        var directForm = le64.exp().mul(alphaScalar).log();                           // p_o = 0: w = alpha p_e
        directForm = directForm.masked_fill(directForm.gt(Scalars.NegativeInfinity).logical_not(), floorLog);
        var logWeight = where(lo64.gt(Scalars.NegativeInfinity), ratioForm, directForm);

        var scores = logWeight.masked_fill(outside, Scalars.NegativeInfinity).to(ScalarType.Float32);
        return (scores.MoveToOuterDisposeScope(), depth.MoveToOuterDisposeScope());
    }

    /// <summary>0-based rank of every token in a stable descending sort of its row (ties in token-id order).</summary>
    internal static Tensor Ranks(Tensor scores)
    {
        using var scope = NewDisposeScope();
        long rows = scores.shape[0], vocab = scores.shape[1];
        var (_, order) = scores.sort(dim: -1, descending: true, stable: true);
        using var stop = vocab.ToScalar();
        var positions = arange(Scalars.Zero, stop, Scalars.One, dtype: ScalarType.Int64, device: scores.device).unsqueeze(0).expand(rows, vocab).contiguous();
        return zeros_like(order).scatter_(-1, order, positions).MoveToOuterDisposeScope();
    }
}
