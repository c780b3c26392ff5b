using DeepAlign.Runtime;
#if NET9_0_OR_GREATER
using System.Runtime.Intrinsics;
#endif
using TorchSharp;
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
        using var vocabScalar = vocab.ToScalar();
        var outside = index.ge(vocabScalar);
        var chosen = where(outside, probs.argmax(-1), index);
        return chosen.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Temperature, top-k, top-p and one inverse-CDF draw per row, as <see cref="Generator"/> samples (the scores are
    /// copied to the host and sampled by <see cref="Choose"/>). The sampled distribution is exactly
    /// <c>softmax(LogitsProcessing.Process(scores, options))</c>; when any filter is active the CDF runs over the surviving
    /// tokens in decreasing score order (ties in index order), otherwise in vocabulary order.
    /// </summary>
    /// <param name="scores">float32 scores <c>[batch, vocab]</c>.</param>
    /// <param name="options">Temperature, TopK and TopP (DoSample is implied).</param>
    /// <param name="uniforms">One number in [0, 1) per row.</param>
    /// <returns>int64 ids <c>[batch]</c> on the scores' device.</returns>
    public static Tensor Sample(Tensor scores, GenerationOptions options, IReadOnlyList<double> uniforms)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(uniforms);
        if (scores.dim() != 2) throw new ArgumentException($"Scores must be [batch, vocab]; got [{string.Join(", ", scores.shape)}].", nameof(scores));
        int batch = (int)scores.shape[0], vocab = (int)scores.shape[1];
        var settings = SamplingSettings.From(options with { DoSample = true }).Validate();
        var host = HostScores(scores);
        var ids = Choose(host, batch, vocab, Enumerable.Repeat(settings, batch).ToArray(), uniforms);
        return tensor(ids, ScalarType.Int64, scores.device);
    }

    /// <summary>The float32 scores as a host array in row-major order (one device-to-host copy).</summary>
    internal static float[] HostScores(Tensor scores)
    {
        float[]? buffer = null;
        return HostScores(scores, ref buffer);
    }

    /// <summary>
    /// Copies the float32 scores into <paramref name="buffer"/> (grown when too small; the first rows x vocab entries are
    /// valid). Reusing one buffer per generation call keeps large-object-heap churn, hence background garbage
    /// collections, out of the decoding loop.
    /// </summary>
    internal static float[] HostScores(Tensor scores, ref float[]? buffer)
    {
        using var scope = NewDisposeScope();
        var f32 = scores.dtype == ScalarType.Float32 ? scores : scores.to_type(ScalarType.Float32);
        var host = f32.cpu().contiguous();
        long n = host.numel();
        if (buffer is null || buffer.Length < n) buffer = new float[n];
        // A span over the tensor's memory: one block copy (TensorAccessor copies element by element, 50x slower).
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(host.bytes).CopyTo(buffer);
        return buffer;
    }

    /// <summary>
    /// Chooses one token per row of host scores: greedy rows take the argmax (first index on ties); sampled rows apply
    /// temperature (a float32 division, as the tensor path), top-k (ties with the k-th score kept), top-p (the smallest
    /// prefix in decreasing-score order, ties by index, whose float64 mass before a token stays below p; the first token
    /// always stays) and draw by inverse CDF with the row's uniform: the first token whose cumulative weight exceeds
    /// <c>u x total</c>, so zero-probability tokens are never chosen. Each row depends only on its own scores, settings
    /// and uniform.
    /// </summary>
    /// <param name="scores">Row-major float32 scores <c>[rows, vocab]</c> (extra entries after them are ignored); every row needs a finite or +inf score and no NaN.</param>
    /// <param name="rows">Number of rows.</param>
    /// <param name="vocab">Scores per row.</param>
    /// <param name="settings">One validated setting per row.</param>
    /// <param name="uniforms">One number in [0, 1) per row (ignored for greedy rows).</param>
    /// <returns>The chosen ids.</returns>
    public static long[] Choose(float[] scores, int rows, int vocab, IReadOnlyList<SamplingSettings> settings, IReadOnlyList<double> uniforms)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(uniforms);
        if (rows < 0 || vocab < 1 || scores.Length < (long)rows * vocab)
            throw new ArgumentException($"Expected at least {rows} x {vocab} scores; got {scores.Length}.", nameof(scores));
        if (settings.Count != rows) throw new ArgumentException($"Expected {rows} sampling settings (one per row); got {settings.Count}.", nameof(settings));
        if (uniforms.Count != rows) throw new ArgumentException($"Expected {rows} uniform numbers (one per row); got {uniforms.Count}.", nameof(uniforms));
        for (int r = 0; r < rows; r++)
            (settings[r] ?? throw new ArgumentException($"Sampling settings of row {r} are null.", nameof(settings))).Validate();
        int invalid = FindInvalidRow(scores, rows, vocab);
        if (invalid >= 0) throw new ArgumentException($"Row {invalid} of the scores holds a NaN or only negative infinity; no token can be chosen.", nameof(scores));
        return ChooseValidRows(scores, rows, vocab, settings, uniforms);
    }

    /// <summary><see cref="Choose"/> on scores the caller has already checked with <see cref="FindInvalidRow"/>.</summary>
    internal static long[] ChooseValidRows(float[] scores, int rows, int vocab, IReadOnlyList<SamplingSettings> settings, IReadOnlyList<double> uniforms)
    {
        var result = new long[rows];
        var work = new RowWork(vocab);
        for (int r = 0; r < rows; r++)
        {
            var row = new ReadOnlySpan<float>(scores, r * vocab, vocab);
            var s = settings[r];
            if (!s.DoSample)
            {
                result[r] = ArgMax(row);
                continue;
            }
            double u = uniforms[r];
            if (!(u >= 0 && u < 1)) throw new ArgumentOutOfRangeException(nameof(uniforms), u, "Uniform numbers must lie in [0, 1).");
            int kept = work.Distribution(row, s);
            result[r] = work.Draw(kept, u);
        }
        return result;
    }

    /// <summary>
    /// The distribution a sampled row draws from, as (token, probability) in CDF order, for tests and diagnostics:
    /// the same code path as <see cref="Choose"/>.
    /// </summary>
    internal static (int[] Ids, double[] Probabilities) Distribution(ReadOnlySpan<float> row, SamplingSettings settings)
    {
        var work = new RowWork(row.Length);
        int kept = work.Distribution(row, settings with { DoSample = true });
        double total = 0;
        for (int i = 0; i < kept; i++) total += work.Weights[i];
        return (work.Order.AsSpan(0, kept).ToArray(), work.Weights.AsSpan(0, kept).ToArray().Select(w => w / total).ToArray());
    }

    /// <summary>Index of the largest score (the first among ties) of a valid row (see <see cref="FindInvalidRow"/>).</summary>
    internal static long ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int v = 1; v < row.Length; v++)
            if (row[v] > row[best]) best = v;
        return best;
    }

    /// <summary>The first row that holds a NaN or only negative infinity (no token can be chosen), or -1.</summary>
    internal static int FindInvalidRow(float[] scores, int rows, int vocab)
    {
        for (int r = 0; r < rows; r++)
        {
            bool candidate = false;
            var row = new ReadOnlySpan<float>(scores, r * vocab, vocab);
            foreach (var x in row)
            {
                if (float.IsNaN(x)) return r;
                if (x > float.NegativeInfinity) candidate = true;
            }
            if (!candidate) return r;
        }
        return -1;
    }

    /// <summary>Reusable per-call buffers of the host sampler (one row at a time).</summary>
    private sealed class RowWork(int vocab)
    {
        private readonly float[] _scaled = new float[vocab];
        private readonly float[] _select = new float[vocab];
        private readonly ulong[] _keys = new ulong[vocab];
        public int[] Order { get; } = new int[vocab];
        public double[] Weights { get; } = new double[vocab];

        /// <summary>Fills <see cref="Order"/> and <see cref="Weights"/> (unnormalised) with the surviving tokens in CDF order; returns their count.</summary>
        public int Distribution(ReadOnlySpan<float> row, SamplingSettings s)
        {
            int n = row.Length;
            float t = (float)s.Temperature;
            float max = float.NegativeInfinity;
            for (int v = 0; v < n; v++)
            {
                float x = s.Temperature == 1.0 ? row[v] : row[v] / t;
                _scaled[v] = x;
                if (x > max) max = x;
            }
            _max = max;
            bool useTopK = s.TopK > 0 && s.TopK < n;
            bool useTopP = s.TopP < 1;
            if (!useTopK && !useTopP)
            {
                for (int v = 0; v < n; v++) Order[v] = v;
                Weigh(_scaled, max, Weights);
                return n;
            }

            // The pool: a set of best tokens closed under ties that holds every survivor; z normalises what top-p sees.
            int pool;
            double z = 0;
            if (useTopK)
            {
                pool = Collect(KthLargest(s.TopK));
                for (int i = 0; i < pool; i++) z += Weights[i];
            }
            else
            {
                Weigh(_scaled, max, Weights);
                for (int v = 0; v < n; v++) z += Weights[v];
                // Pure top-p: tokens of probability at least 1e-4, then 1e-8, then all, until the pool holds mass >= p.
                pool = 0;
                foreach (double floor in PoolFloors)
                {
                    float cut = floor == 0 ? float.NegativeInfinity : (float)(max + Math.Log(floor * z));
                    pool = Collect(cut);
                    double mass = 0;
                    for (int i = 0; i < pool; i++) mass += Weights[i];
                    if (mass / z >= s.TopP || floor == 0) break;
                }
            }
            SortPool(pool);
            if (!useTopP) return pool;
            int kept = 0;
            double before = 0;
            while (kept < pool && (kept == 0 || before < s.TopP))
            {
                before += Weights[kept] / z;
                kept++;
            }
            return kept;
        }

        /// <summary>Sorts the pool by decreasing score, ties by index, with one primitive sort of composite keys.</summary>
        private void SortPool(int pool)
        {
            for (int i = 0; i < pool; i++)
            {
                // Order-preserving map of the float to 32 bits, inverted for descending order; the index breaks ties.
                float value = _scaled[Order[i]];
                uint bits = (uint)BitConverter.SingleToInt32Bits(value == 0 ? 0f : value); // -0 ties with +0
                uint ascending = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
                _keys[i] = ((ulong)~ascending << 32) | (uint)Order[i];
            }
            Array.Sort(_keys, 0, pool);
            for (int i = 0; i < pool; i++)
            {
                Order[i] = (int)(uint)_keys[i];
                _select[i] = _scaled[Order[i]];
            }
            Weigh(_select.AsSpan(0, pool), _max, Weights);
        }

        /// <summary>Inverse CDF over the first <paramref name="kept"/> entries.</summary>
        public long Draw(int kept, double u)
        {
            double total = 0;
            for (int i = 0; i < kept; i++) total += Weights[i];
            double target = u * total, cumulative = 0;
            int last = 0;
            for (int i = 0; i < kept; i++)
            {
                if (Weights[i] <= 0) continue;
                last = i;
                cumulative += Weights[i];
                if (cumulative > target) return Order[i];
            }
            return Order[last]; // rounding left the target at the very end
        }

        private int Collect(float threshold)
        {
            int count = 0;
            for (int v = 0; v < _scaled.Length; v++)
                if (_scaled[v] >= threshold && _scaled[v] > float.NegativeInfinity)
                {
                    Order[count] = v;
                    _select[count] = _scaled[v];
                    count++;
                }
            Weigh(_select.AsSpan(0, count), _max, Weights);
            return count;
        }

        /// <summary><c>weights[i] = Weight(values[i], max)</c>, four at a time with the vectorised float64 exp when available.</summary>
        private static void Weigh(ReadOnlySpan<float> values, float max, Span<double> weights)
        {
            int i = 0;
#if NET9_0_OR_GREATER // Vector256.Exp arrived in .NET 9; net8.0 takes the scalar loop below.
            if (Vector256.IsHardwareAccelerated && !float.IsPositiveInfinity(max))
            {
                var cutoff = Vector256.Create(NegligibleLogWeight);
                for (; i + 4 <= values.Length; i += 4)
                {
                    var d = Vector256.Create((double)values[i] - max, (double)values[i + 1] - max, (double)values[i + 2] - max, (double)values[i + 3] - max);
                    Vector256.ConditionalSelect(Vector256.LessThan(d, cutoff), Vector256<double>.Zero, Vector256.Exp(d)).CopyTo(weights[i..]);
                }
            }
#endif
            for (; i < values.Length; i++) weights[i] = Weight(values[i], max);
        }

        private float _max;

        /// <summary>
        /// exp(x - max) in float64 (the vectorised exp of <see cref="Weigh"/> agrees with <see cref="Math.Exp"/> to within
        /// 2 ulp). Weights below 2^-60 of the best token's (x - max &lt; -41.6) count as 0: such a token's
        /// probability is far below the 53-bit resolution of the uniform draw, and skipping its exp makes peaked rows cheap.
        /// </summary>
        private static double Weight(float x, float max)
        {
            if (float.IsPositiveInfinity(max)) return float.IsPositiveInfinity(x) ? 1.0 : 0.0;
            double d = (double)x - max;
            return d < NegligibleLogWeight ? 0.0 : Math.Exp(d);
        }

        private static readonly double[] PoolFloors = [1e-4, 1e-8, 0.0];

        private const double NegligibleLogWeight = -41.588830833596715; // ln(2^-60)

        /// <summary>The k-th largest scaled score (quickselect on a copy).</summary>
        private float KthLargest(int k)
        {
            int n = _scaled.Length;
            Array.Copy(_scaled, _select, n);
            int lo = 0, hi = n - 1, target = k - 1;
            while (lo < hi)
            {
                float pivot = _select[(lo + hi) >>> 1];
                int i = lo, j = hi;
                while (i <= j)
                {
                    while (_select[i] > pivot) i++;
                    while (_select[j] < pivot) j--;
                    if (i <= j) { (_select[i], _select[j]) = (_select[j], _select[i]); i++; j--; }
                }
                if (target <= j) hi = j;
                else if (target >= i) lo = i;
                else break;
            }
            return _select[target];
        }
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
        ulong z = Mix((ulong)seed ^ Mix((ulong)counter + SplitMix64.Gamma));
        return (z >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>The seed row <paramref name="row"/> uses when its request has none: a mix of the call's seed and the row index.</summary>
    /// <param name="seed">The call's seed.</param>
    /// <param name="row">Index of the request.</param>
    /// <returns>The row's seed.</returns>
    public static long RowSeed(long seed, int row) => (long)Mix((ulong)seed + SplitMix64.Gamma * (ulong)(row + 1));

    private static ulong Mix(ulong z) => SplitMix64.Mix(z);
}
