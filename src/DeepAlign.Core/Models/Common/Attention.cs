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
            mask = causal.view(1, 1, newTokens, total).logical_and(real).logical_or(self.view(1, 1, newTokens, total));
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
            output = nn.functional.scaled_dot_product_attention(q, k, v, p: dropout, is_casual: true);
        }
        else if (groups == 1)
        {
            output = nn.functional.scaled_dot_product_attention(q, k, v, mask, dropout);
        }
        else
        {
            // Query head j*groups+g uses key/value head j (transformers' repeat_kv order), so folding the groups
            // into the query axis attends every group to the same cached keys without copying them.
            var folded = q.reshape(b, kvH, groups * t, d);
            output = nn.functional.scaled_dot_product_attention(folded, k, v, mask, dropout).view(b, h, t, d);
        }
        return output.transpose(1, 2).reshape(b, t, h * d).MoveToOuterDisposeScope();
    }
}
