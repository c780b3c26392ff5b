using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Models.Common;

/// <summary>
/// The one place attention is computed: TorchSharp's <c>scaled_dot_product_attention</c> (whose causal flag is
/// spelled <c>is_casual</c> in 0.107). Grouped-query attention folds the query groups into the sequence axis
/// (<c>[B, kvHeads, groups*T, D]</c>) so cached keys and values are never repeated in memory.
/// </summary>
internal static class Attention
{
    /// <summary>
    /// Builds the boolean attention mask <c>[B, 1, T, past+T]</c> (true = may attend): causal, excluding padded keys,
    /// but every query may always attend to itself, so a padded query row is never fully masked (no NaN).
    /// </summary>
    public static Tensor BuildMask(Tensor? keyIsReal, long batch, long past, long newTokens, Device device)
    {
        using var scope = NewDisposeScope();
        long total = past + newTokens;
        // Explicit, reachable Scalars (see Runtime/Scalars.cs); the two-argument arange also adds an implicit step.
        using var start = past.ToScalar();
        using var stop = total.ToScalar();
        var q = arange(start, stop, Scalars.One, dtype: ScalarType.Int64, device: device).view(newTokens, 1);
        var k = arange(Scalars.Zero, stop, Scalars.One, dtype: ScalarType.Int64, device: device).view(1, total);
        var causal = k.le(q);      // [T, S]
        var self = k.eq(q);        // [T, S]
        Tensor mask;
        if (keyIsReal is null)
            mask = causal.view(1, 1, newTokens, total).expand(batch, 1, newTokens, total);
        else
        {
            var real = keyIsReal.to_type(ScalarType.Bool).view(batch, 1, 1, total);
            // bitwise_and/or equal logical_and/or on bool tensors and, unlike them, have meta kernels (Runtime/MetaFallback.cs).
            mask = causal.view(1, 1, newTokens, total).bitwise_and(real).bitwise_or(self.view(1, 1, newTokens, total));
        }
        return mask.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Repeats a <c>[B, 1, T, S]</c> mask for grouped-query folding: row <c>g*T + t</c> of the folded query uses row t.
    /// Done once per forward, shared by every layer.
    /// </summary>
    public static Tensor FoldForGroups(Tensor mask, long groups) => groups == 1 ? mask : mask.repeat(1, 1, groups, 1);

    /// <summary>
    /// Attends <paramref name="q"/> <c>[B, H, T, D]</c> over <paramref name="k"/>, <paramref name="v"/> <c>[B, kvH, S, D]</c>.
    /// With <paramref name="mask"/> null the attention is plain causal (no padding, no cache, no key/value groups);
    /// otherwise the mask is <c>[B, 1, groups*T, S]</c> as produced by <see cref="FoldForGroups"/>.
    /// </summary>
    /// <returns><c>[B, T, H*D]</c>.</returns>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask, double dropout)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], h = q.shape[1], t = q.shape[2], d = q.shape[3];
        long kvH = k.shape[1];
        long groups = h / kvH;
        Tensor output;
        if (mask is null)
        {
            if (groups != 1) throw new InvalidOperationException("Grouped-query attention needs an explicit mask.");
            output = Sdpa(q, k, v, null, dropout, causal: true);
        }
        else if (groups == 1)
        {
            output = Sdpa(q, k, v, mask, dropout, causal: false);
        }
        else
        {
            // Query head j*groups+g uses key/value head j (transformers' repeat_kv order), so folding the groups
            // into the query axis attends every group to the same cached keys without copying them.
            var folded = q.reshape(b, kvH, groups * t, d);
            output = Sdpa(folded, k, v, mask, dropout, causal: false).view(b, h, t, d);
        }
        return output.transpose(1, 2).reshape(b, t, h * d).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>scaled_dot_product_attention</c>; on the meta device (where libtorch's C++ build has no kernel for it, see
    /// <see cref="MetaFallback"/>) the same shapes, device checks and autograd graph through the textbook formula
    /// softmax(q k^T / sqrt(d), masked) v. A bool mask is true where a query may attend.
    /// </summary>
    internal static Tensor Sdpa(Tensor q, Tensor k, Tensor v, Tensor? mask, double dropout, bool causal)
    {
        if (!MetaFallback.IsMeta(q) && !MetaFallback.IsMeta(k) && !MetaFallback.IsMeta(v) && (mask is null || !MetaFallback.IsMeta(mask)))
            return causal
                ? nn.functional.scaled_dot_product_attention(q, k, v, p: dropout, is_casual: true)
                : nn.functional.scaled_dot_product_attention(q, k, v, mask, dropout);
        return MathAttention(q, k, v, mask, dropout, causal);
    }

    /// <summary>The textbook attention softmax(q k^T / sqrt(d) + mask) v, with sdpa's device checks.</summary>
    internal static Tensor MathAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, double dropout, bool causal)
    {
        MetaFallback.RequireSameDevice("scaled_dot_product_attention", q, k, v, mask);
        using var scope = NewDisposeScope();
        long t = q.shape[^2], s = k.shape[^2];
        using var scale = (1.0 / Math.Sqrt(q.shape[^1])).ToScalar();
        var scores = q.matmul(k.transpose(-2, -1)).mul(scale);
        var allowed = mask;
        if (causal) allowed = ones(new long[] { t, s }, ScalarType.Bool, q.device).tril();
        if (allowed is not null)
        {
            if (allowed.dtype != ScalarType.Bool)
                throw new NotSupportedException("The attention fallback takes bool masks only (the library builds no other kind).");
            scores = scores.masked_fill(allowed.bitwise_not(), Scalars.NegativeInfinity);
        }
        var weights = scores.softmax(-1);
        if (dropout > 0) weights = nn.functional.dropout(weights, dropout, training: true);
        return weights.matmul(v).MoveToOuterDisposeScope();
    }
}
