using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// Chooses token ids from processed scores: argmax for greedy decoding, and inverse-CDF sampling driven by one
/// seeded uniform number per row for sampling.
/// </summary>
/// <remarks>
/// Sampling uses a counter-based draw <see cref="Uniform"/>(rowSeed, step) instead of a shared
/// <c>torch.Generator</c>: the token a row gets depends only on its own scores, its seed and the step, never
/// on the batch composition, the device, or on how many random numbers another code path consumed. Two
/// decoders that produce identical scores therefore produce identical tokens (e.g. contrastive decoding
/// with alpha = 0 reproduces the plain generator), and a batched run equals one-at-a-time runs with the same
/// per-row seeds. The inverse CDF is computed in float64: the token is the first index whose cumulative
/// probability exceeds <c>u x total</c>, so zero-probability tokens are never chosen.
/// </remarks>
public static class TokenSampler
{
    /// <summary>Argmax of each row (the first index among ties).</summary>
    /// <param name="scores">Scores <c>[batch, vocab]</c>.</param>
    /// <returns>int64 ids <c>[batch]</c>.</returns>
    public static Tensor Greedy(Tensor scores) => scores.argmax(-1, keepdim: false);

    /// <summary>Draws one token per row from <c>softmax(<paramref name="processedScores"/>)</c> by inverse CDF.</summary>
    /// <param name="processedScores">Scores <c>[batch, vocab]</c>, typically from <see cref="LogitsProcessing.Process(Tensor, GenerationOptions)"/>.</param>
    /// <param name="uniforms">One number in [0, 1) per row.</param>
    /// <returns>int64 ids <c>[batch]</c> on the scores' device.</returns>
    public static Tensor Sample(Tensor processedScores, IReadOnlyList<double> uniforms)
    {
        ArgumentNullException.ThrowIfNull(processedScores);
        ArgumentNullException.ThrowIfNull(uniforms);
        long batch = processedScores.shape[0];
        if (uniforms.Count != batch)
            throw new ArgumentException($"Expected {batch} uniform numbers (one per row); got {uniforms.Count}.", nameof(uniforms));
        foreach (var u in uniforms)
            if (!(u >= 0 && u < 1)) throw new ArgumentOutOfRangeException(nameof(uniforms), u, "Uniform numbers must lie in [0, 1).");
        using var scope = NewDisposeScope();
        var probs = processedScores.to(ScalarType.Float64).softmax(-1);
        var cdf = probs.cumsum(-1);
        var total = cdf.narrow(-1, cdf.shape[^1] - 1, 1);
        var u64 = tensor(uniforms.ToArray(), new long[] { batch, 1 }, ScalarType.Float64, processedScores.device);
        var target = u64.mul(total);
        var index = searchsorted(cdf, target, out_int32: false, right: true).squeeze(-1);
        // u * total < total, so the index is inside the vocabulary unless rounding pushed it out; fall back to argmax then.
        var vocab = processedScores.shape[^1];
        var outside = index.ge(vocab);
        var chosen = where(outside, probs.argmax(-1), index);
        return chosen.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Temperature, top-k, top-p and one inverse-CDF draw per row, as <see cref="Generator"/> samples. The sampled
    /// distribution is exactly <c>softmax(LogitsProcessing.Process(scores, options))</c>, but the work is done on a small
    /// candidate set found with <c>topk</c> instead of sorting the whole vocabulary. When any filter is active the CDF
    /// runs over the surviving tokens in decreasing score order (ties in index order); otherwise in vocabulary order.
    /// </summary>
    /// <param name="scores">float32 scores <c>[batch, vocab]</c>.</param>
    /// <param name="options">Temperature, TopK and TopP.</param>
    /// <param name="uniforms">One number in [0, 1) per row.</param>
    /// <returns>int64 ids <c>[batch]</c>.</returns>
    public static Tensor Sample(Tensor scores, GenerationOptions options, IReadOnlyList<double> uniforms)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(options);
        long vocab = scores.shape[^1];
        bool filtered = (options.TopK > 0 && options.TopK < vocab) || options.TopP < 1;
        if (!filtered)
        {
            using var scaled = LogitsProcessing.ApplyTemperature(scores, options.Temperature);
            return Sample(scaled, uniforms);
        }
        using var scope = NewDisposeScope();
        var (ids, probs) = Candidates(scores, options.Temperature, options.TopK, options.TopP);
        var positions = Sample(probs.log(), uniforms);
        return ids.gather(-1, positions.unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The tokens that survive temperature, top-k and top-p, in decreasing score order (ties by index), with their
    /// float64 sampling probabilities (<c>[batch, n]</c> each; entries past a row's survivors have probability 0).
    /// </summary>
    internal static (Tensor Ids, Tensor Probabilities) Candidates(Tensor scores, double temperature, int topK, double topP)
    {
        using var scope = NewDisposeScope();
        long vocab = scores.shape[^1];
        var scaled = temperature == 1.0 ? scores.alias() : scores.div(temperature);
        bool useTopK = topK > 0 && topK < vocab;
        long m = useTopK ? topK : Math.Min(64, vocab);
        Tensor values, ids, logZ;
        while (true)
        {
            if (m >= vocab)
            {
                (values, ids) = scaled.sort(-1, descending: true, stable: true);
            }
            else
            {
                // All tokens scoring at least the m-th best: a set closed under ties, so its canonical order is exactly
                // the prefix of the full stable sort. k2 (the largest such set over the rows) tokens hold every row's set.
                var mth = scaled.topk((int)m, dim: -1, largest: true, sorted: true).values.narrow(-1, m - 1, 1);
                long k2 = scaled.ge(mth).sum(-1).max().item<long>();
                var (topValues, topIds) = scaled.topk((int)k2, dim: -1, largest: true, sorted: true);
                var (byIndex, permutation) = topIds.sort(-1, descending: false, stable: true);
                var (sortedValues, order) = topValues.gather(-1, permutation).sort(-1, descending: true, stable: true);
                ids = byIndex.gather(-1, order);
                values = sortedValues.masked_fill(sortedValues.lt(mth), double.NegativeInfinity);
            }
            logZ = (useTopK ? values : scaled).to(ScalarType.Float64).logsumexp(-1, keepdim: true);
            if (useTopK || topP >= 1 || m >= vocab) break;
            // Pure top-p: the nucleus lies inside the candidates once they hold at least topP of the mass in every row.
            var mass = values.to(ScalarType.Float64).sub(logZ).exp().sum(-1);
            if (mass.ge(topP).all().item<bool>()) break;
            m = Math.Min(vocab, m * 4);
        }
        if (topP < 1)
        {
            var p = values.to(ScalarType.Float64).sub(logZ).exp();
            var remove = p.cumsum(-1).sub(p).ge(topP);
            remove.select(-1, 0).fill_(false);
            values = values.masked_fill(remove, double.NegativeInfinity);
        }
        var probabilities = values.to(ScalarType.Float64).softmax(-1);
        return (ids.MoveToOuterDisposeScope(), probabilities.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// A deterministic number in [0, 1) from a seed and a counter (SplitMix64 mixing, 53-bit mantissa). Rows use
    /// <c>Uniform(rowSeed, step)</c>.
    /// </summary>
    /// <param name="seed">The row's seed.</param>
    /// <param name="counter">The draw index (the step).</param>
    /// <returns>A number in [0, 1).</returns>
    public static double Uniform(long seed, long counter)
    {
        ulong z = Mix((ulong)seed ^ Mix((ulong)counter + 0x9E3779B97F4A7C15UL));
        return (z >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>The seed row <paramref name="row"/> uses when its request has none: a mix of the call's seed and the row index.</summary>
    /// <param name="seed">The call's seed.</param>
    /// <param name="row">Index of the request.</param>
    /// <returns>The row's seed.</returns>
    public static long RowSeed(long seed, int row) => (long)Mix((ulong)seed + 0x9E3779B97F4A7C15UL * (ulong)(row + 1));

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
