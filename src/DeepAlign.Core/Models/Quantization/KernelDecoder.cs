using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DeepAlign.Configuration;
using DeepAlign.Models.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Models.Quantization;

/// <summary>
/// The fused decoding step of a converted model (<see cref="QuantizationOptions.FusedDecode"/>): one new token per row
/// (at most <see cref="QuantizationOptions.MaxKernelRows"/> rows, with the KV cache) through the whole decoder in C# on
/// raw memory: embedding lookup, RMSNorm, the projections through <see cref="LinearKernels"/>, RoPE, the new keys and
/// values written in place into the cache, grouped-query attention over the cache (with the padding mask), SiLU gate,
/// residual adds, final norm and head. A libtorch decoding step issues ~50 native calls per layer (each a few
/// microseconds plus allocations and dispose-scope bookkeeping); this step issues one allocation (the logits) and a
/// few pointer look-ups. Activations stay float32 between the projections whatever the model dtype (llama.cpp's
/// numerics; the libtorch path rounds them to bfloat16 after every op of a bfloat16 model); keys and values are
/// stored in the cache's dtype, so prefill and decoding steps of either path can be mixed.
/// </summary>
internal sealed unsafe class KernelDecoder : IDisposable
{
    private readonly CausalLMConfig _config;
    private readonly KernelLinear[][] _projections; // per layer: q, k, v, o, gate, up, down
    private readonly RmsNorm[] _inputNorms, _postNorms;
    private readonly RmsNorm _finalNorm;
    private readonly Tensor _embedding;
    private readonly KernelLinear _head;
    private readonly float[] _invFreq;
    private readonly int _maxRows;
    private readonly List<Tensor> _parameters;
    private bool _disposed;
    private long _steps;

    // Per-thread scratch: several evaluation workers may decode through one shared model at once (SafetyEvaluator.EvaluateAll
    // allows defenses to share weights), so no step state lives in the decoder. Pinned arrays never move and are freed by the GC.
    [ThreadStatic] private static float[]? t_scratch;

    /// <summary>Stopwatch ticks spent in RoPE, the cache writes and attention while <see cref="KernelLinear.Profiling"/>
    /// is on (a benchmark hook).</summary>
    internal static long AttentionTicks;

    /// <summary>Steps run through this decoder (a test and benchmark hook).</summary>
    internal long Steps => Interlocked.Read(ref _steps);

    private KernelDecoder(CausalLMConfig config, KernelLinear[][] projections, RmsNorm[] inputNorms, RmsNorm[] postNorms, RmsNorm finalNorm,
        Tensor embedding, KernelLinear head)
    {
        _config = config;
        _projections = projections;
        _inputNorms = inputNorms;
        _postNorms = postNorms;
        _finalNorm = finalNorm;
        _embedding = embedding;
        _head = head;
        _invFreq = RotaryEmbedding.ComputeInverseFrequencies(config);
        _maxRows = Math.Min(head.MaxKernelRows, projections.Min(l => l.Min(p => p.MaxKernelRows)));
        _parameters = new List<Tensor> { embedding, finalNorm.Weight };
        _parameters.AddRange(inputNorms.Select(n => (Tensor)n.Weight));
        _parameters.AddRange(postNorms.Select(n => (Tensor)n.Weight));
        _parameters.AddRange(projections.SelectMany(l => l.Select(p => p.Weight)));
        _parameters.Add(head.Weight);
    }

    /// <summary>The decoder over <paramref name="backbone"/>'s layers, or null when a projection or the head is not a
    /// <see cref="KernelLinear"/> (the step then runs through libtorch).</summary>
    internal static KernelDecoder? TryCreate(CausalLMConfig config, DecoderBackbone backbone, nn.Module<Tensor, Tensor>? head)
    {
        if (head is not KernelLinear kernelHead) return null;
        var layers = backbone.Layers;
        var projections = new KernelLinear[layers.Count][];
        for (int i = 0; i < layers.Count; i++)
        {
            var modules = layers[i].SelfAttention.Projections().Concat(layers[i].Mlp.Projections()).Select(p => p.Module as KernelLinear).ToArray();
            if (modules.Length != 7 || modules.Any(m => m is null)) return null;
            projections[i] = modules!;
        }
        var norms = layers.Select(l => l.InputNorm).ToArray();
        var post = layers.Select(l => l.PostAttentionNorm).ToArray();
        return new KernelDecoder(config, projections, norms, post, backbone.Norm, backbone.EmbedTokens.Weight, kernelHead);
    }

    /// <summary>The logits <c>[batch, 1, vocab]</c> (float32) of one cached step, or null when this step cannot run here
    /// (more rows than the kernels take, gradients wanted, another device or dtype, dropout in training mode): the
    /// caller then runs the libtorch path. Shapes are validated by the caller.</summary>
    public Tensor? TryForward(Tensor inputIds, Tensor? attentionMask, KvCache cache, bool dropoutActive)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var c = _config;
        int rows = (int)inputIds.shape[0];
        if (inputIds.shape[1] != 1 || rows > _maxRows || dropoutActive || !TensorData.Available) return null;
        if (inputIds.device_type != DeviceType.CPU || cache.Device.type != DeviceType.CPU || _embedding.device_type != DeviceType.CPU) return null;
        if (cache.DType is not (ScalarType.Float32 or ScalarType.BFloat16) || _embedding.dtype is not (ScalarType.Float32 or ScalarType.BFloat16)) return null;
        if (cache.KeyValueHeads != c.KeyValueHeads || cache.HeadDim != c.HeadDim) return null;
        if (attentionMask is not null && attentionMask.device_type != DeviceType.CPU) return null;
        if (is_grad_enabled() && _parameters.Any(p => p.requires_grad)) return null;

        int hidden = c.HiddenSize, heads = c.NumAttentionHeads, kvHeads = c.KeyValueHeads, headDim = c.HeadDim, inter = c.IntermediateSize;
        int vocab = c.VocabSize, past = cache.Length, total = past + 1, groups = heads / kvHeads, half = headDim / 2;
        int threads = get_num_threads();

        // Token ids, positions and the padding mask on the host.
        var ids = new long[rows];
        using (var idsCopy = inputIds.reshape(rows).contiguous()) idsCopy.data<long>().CopyTo(ids);
        foreach (var id in ids)
            if (id < 0 || id >= _embedding.shape[0])
                throw new ArgumentOutOfRangeException(nameof(inputIds), id, $"Token id outside the vocabulary of {_embedding.shape[0]}.");
        bool[]? real = null;
        var positions = new int[rows];
        if (attentionMask is null) Array.Fill(positions, past);
        else
        {
            real = new bool[rows * total];
            using var m = attentionMask.to_type(ScalarType.Int64).contiguous();
            var span = m.data<long>();
            for (int r = 0; r < rows; r++)
            {
                int ones = 0;
                for (int j = 0; j < total; j++) { bool on = span[r * total + j] != 0; real[r * total + j] = on; if (on) ones++; }
                positions[r] = Math.Max(0, ones - 1); // cumsum(mask) - 1 at the new column, clamped like the libtorch path
            }
        }

        // Scratch (float32): h, xn, q, k, v, attended, gate, up, projection output, scores, cos, sin.
        long need = (long)rows * (3 * hidden + 2 * heads * headDim + 2 * kvHeads * headDim + 2 * inter + 2 * half) + (long)total * groups + 16;
        var buffer = Scratch(need);
        float* h = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)), xn = h + rows * hidden, proj = xn + rows * hidden, q = proj + rows * hidden;
        float* k = q + rows * heads * headDim, v = k + rows * kvHeads * headDim, att = v + rows * kvHeads * headDim;
        float* gate = att + rows * heads * headDim, up = gate + (long)rows * inter, cos = up + (long)rows * inter, sin = cos + rows * half;
        float* scores = sin + rows * half;

        Embed(ids, h, hidden);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < half; i++)
            {
                float angle = positions[r] * _invFreq[i]; // float32 product, as the libtorch tables
                cos[r * half + i] = MathF.Cos(angle);
                sin[r * half + i] = MathF.Sin(angle);
            }

        bool bf16Cache = cache.DType == ScalarType.BFloat16;
        float scale = (float)(1.0 / Math.Sqrt(headDim));
        for (int l = 0; l < _projections.Length; l++)
        {
            var p = _projections[l];
            Norm(_inputNorms[l], h, xn, rows, hidden);
            p[0].RunFloat32(xn, q, rows, threads);
            p[1].RunFloat32(xn, k, rows, threads);
            p[2].RunFloat32(xn, v, rows, threads);
            long t0 = KernelLinear.Profiling ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            for (int r = 0; r < rows; r++)
            {
                for (int hh = 0; hh < heads; hh++) Rope(q + (r * heads + hh) * headDim, cos + r * half, sin + r * half, half);
                for (int hh = 0; hh < kvHeads; hh++) Rope(k + (r * kvHeads + hh) * headDim, cos + r * half, sin + r * half, half);
            }
            var (keys, values, capacity) = cache.Buffers(l, total);
            byte* kb = (byte*)TensorData.Pointer(keys), vb = (byte*)TensorData.Pointer(values);
            int elem = bf16Cache ? 2 : 4;
            for (int r = 0; r < rows; r++)
                for (int g = 0; g < kvHeads; g++)
                {
                    long slot = (((long)r * kvHeads + g) * capacity + past) * headDim;
                    Store(k + (r * kvHeads + g) * headDim, kb + slot * elem, headDim, bf16Cache);
                    Store(v + (r * kvHeads + g) * headDim, vb + slot * elem, headDim, bf16Cache);
                }
            for (int r = 0; r < rows; r++)
                for (int g = 0; g < kvHeads; g++)
                {
                    // Query heads g*groups .. g*groups+groups-1 use key/value head g (repeat_kv order): one pass over its cache.
                    long head0 = ((long)r * kvHeads + g) * capacity * headDim;
                    Attend(q + (r * heads + g * groups) * headDim, groups, kb + head0 * elem, vb + head0 * elem, bf16Cache, headDim, total, scale,
                        real is null ? null : real.AsSpan(r * total, total), scores, att + (r * heads + g * groups) * headDim);
                }
            if (KernelLinear.Profiling) Interlocked.Add(ref AttentionTicks, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            p[3].RunFloat32(att, proj, rows, threads);
            Add(h, proj, rows * hidden);
            Norm(_postNorms[l], h, xn, rows, hidden);
            p[4].RunFloat32(xn, gate, rows, threads);
            p[5].RunFloat32(xn, up, rows, threads);
            SiluMul(gate, up, rows * inter);
            p[6].RunFloat32(gate, proj, rows, threads);
            Add(h, proj, rows * hidden);
        }
        cache.Advance(1);
        Interlocked.Increment(ref _steps);
        Norm(_finalNorm, h, xn, rows, hidden);
        var logits = empty(new long[] { rows, 1, vocab }, ScalarType.Float32);
        _head.RunFloat32(xn, (float*)TensorData.Pointer(logits), rows, threads);
        return logits;
    }

    private static float[] Scratch(long floats)
    {
        var buffer = t_scratch;
        if (buffer is not null && buffer.LongLength >= floats) return buffer;
        buffer = GC.AllocateUninitializedArray<float>((int)Math.Max(floats, (buffer?.LongLength ?? 0) * 2), pinned: true);
        t_scratch = buffer;
        return buffer;
    }

    private void Embed(long[] ids, float* h, int hidden)
    {
        byte* table = (byte*)TensorData.Pointer(_embedding);
        bool bf16 = _embedding.dtype == ScalarType.BFloat16;
        for (int r = 0; r < ids.Length; r++)
        {
            if (bf16)
            {
                ushort* row = (ushort*)table + ids[r] * hidden;
                for (int i = 0; i < hidden; i++) h[r * hidden + i] = LinearKernels.FromBFloat16(row[i]);
            }
            else new ReadOnlySpan<float>((float*)table + ids[r] * hidden, hidden).CopyTo(new Span<float>(h + r * hidden, hidden));
        }
    }

    /// <summary>RMSNorm as <c>LlamaRMSNorm</c>: <c>x * rsqrt(mean(x^2) + eps) * weight</c> (mean in float64 here).</summary>
    private static void Norm(RmsNorm norm, float* x, float* y, int rows, int n)
    {
        var weight = norm.Weight;
        bool bf16 = weight.dtype == ScalarType.BFloat16;
        void* w = TensorData.Pointer(weight);
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            double sum = 0;
            for (int i = 0; i < n; i++) sum += (double)xr[i] * xr[i];
            float inv = 1f / MathF.Sqrt((float)(sum / n) + (float)norm.Eps);
            if (bf16)
                for (int i = 0; i < n; i++) yr[i] = xr[i] * inv * LinearKernels.FromBFloat16(((ushort*)w)[i]);
            else
                for (int i = 0; i < n; i++) yr[i] = xr[i] * inv * ((float*)w)[i];
        }
    }

    /// <summary>Rotate-half RoPE in place: <c>x * cos + rotate_half(x) * sin</c>.</summary>
    private static void Rope(float* x, float* cos, float* sin, int half)
    {
        for (int i = 0; i < half; i++)
        {
            float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * cos[i] + -x2 * sin[i];
            x[i + half] = x2 * cos[i] + x1 * sin[i];
        }
    }

    private static void Store(float* src, byte* dst, int n, bool bf16)
    {
        if (!bf16) { new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>(dst, n)); return; }
        var d = (ushort*)dst;
        for (int i = 0; i < n; i++) d[i] = LinearKernels.ToBFloat16(src[i]);
    }

    /// <summary>Softmax attention of <paramref name="groups"/> consecutive query heads over <paramref name="total"/>
    /// cached positions of one key/value head (positions a false <paramref name="real"/> entry marks are skipped, except
    /// the new one, the last). <paramref name="scores"/> holds <c>groups * total</c> floats.</summary>
    private static void Attend(float* q, int groups, byte* keys, byte* values, bool bf16, int d, int total, float scale, ReadOnlySpan<bool> real,
        float* scores, float* output)
    {
        if (bf16) Attend<Bf16Row>(q, groups, keys, values, d, total, scale, real, scores, output);
        else Attend<F32Row>(q, groups, keys, values, d, total, scale, real, scores, output);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Attend<TRow>(float* q, int groups, byte* keys, byte* values, int d, int total, float scale, ReadOnlySpan<bool> real,
        float* scores, float* output) where TRow : struct, IRow
    {
        var ld = default(TRow);
        long rowBytes = (long)d * ld.Size;
        bool simd = !LinearKernels.ForceScalar && Avx2.IsSupported && Fma.IsSupported && d % 8 == 0;
        var sv = Vector256.Create(scale);
        for (int h = 0; h < groups; h++)
        {
            float* qh = q + h * d, sh = scores + h * total;
            int j = 0;
            if (simd)
                for (; j + 8 <= total; j += 8)
                {
                    // Eight keys at once: eight independent FMA chains, then one transposing reduction.
                    byte* k0 = keys + j * rowBytes;
                    Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                    for (int c = 0; c < d; c += 8)
                    {
                        var qv = Avx.LoadVector256(qh + c);
                        a0 = Fma.MultiplyAdd(ld.Load8(k0, c), qv, a0);
                        a1 = Fma.MultiplyAdd(ld.Load8(k0 + rowBytes, c), qv, a1);
                        a2 = Fma.MultiplyAdd(ld.Load8(k0 + 2 * rowBytes, c), qv, a2);
                        a3 = Fma.MultiplyAdd(ld.Load8(k0 + 3 * rowBytes, c), qv, a3);
                        a4 = Fma.MultiplyAdd(ld.Load8(k0 + 4 * rowBytes, c), qv, a4);
                        a5 = Fma.MultiplyAdd(ld.Load8(k0 + 5 * rowBytes, c), qv, a5);
                        a6 = Fma.MultiplyAdd(ld.Load8(k0 + 6 * rowBytes, c), qv, a6);
                        a7 = Fma.MultiplyAdd(ld.Load8(k0 + 7 * rowBytes, c), qv, a7);
                    }
                    var s0123 = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
                    var s4567 = Avx.HorizontalAdd(Avx.HorizontalAdd(a4, a5), Avx.HorizontalAdd(a6, a7));
                    var sums = Avx.Add(Avx.Permute2x128(s0123, s4567, 0x20), Avx.Permute2x128(s0123, s4567, 0x31));
                    Avx.Store(sh + j, Avx.Multiply(sums, sv));
                }
            for (; j < total; j++)
            {
                byte* key = keys + j * rowBytes;
                float s = 0;
                for (int c = 0; c < d; c++) s += qh[c] * ld.At(key, c);
                sh[j] = s * scale;
            }
            if (!real.IsEmpty)
                for (int m = 0; m < total - 1; m++)
                    if (!real[m]) sh[m] = float.NegativeInfinity;
            float max = float.NegativeInfinity;
            for (int m = 0; m < total; m++) if (sh[m] > max) max = sh[m];
            int i = 0;
            var mv = Vector256.Create(max);
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= total; i += 8)
            {
                var e = Exp(Vector256.Load(sh + i) - mv);
                e.Store(sh + i);
                acc += e;
            }
            float sum = Vector256.Sum(acc);
            for (; i < total; i++) { float e = MathF.Exp(sh[i] - max); sh[i] = e; sum += e; }
            float inv = 1f / sum;

            // output = sum_j p_j v_j, up to 64 values of the head at a time held in registers over all positions.
            float* oh = output + h * d;
            int c0 = 0;
            if (simd)
                for (; c0 < d; c0 += 64)
                {
                    int width = Math.Min(64, d - c0);
                    Vector256<float> o0 = Vector256<float>.Zero, o1 = o0, o2 = o0, o3 = o0, o4 = o0, o5 = o0, o6 = o0, o7 = o0;
                    for (int m = 0; m < total; m++)
                    {
                        float pm = sh[m];
                        if (pm == 0) continue;
                        var pv = Vector256.Create(pm);
                        byte* vr = values + m * rowBytes;
                        o0 = Fma.MultiplyAdd(ld.Load8(vr, c0), pv, o0);
                        if (width > 8) o1 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 8), pv, o1);
                        if (width > 16) o2 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 16), pv, o2);
                        if (width > 24) o3 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 24), pv, o3);
                        if (width > 32) o4 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 32), pv, o4);
                        if (width > 40) o5 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 40), pv, o5);
                        if (width > 48) o6 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 48), pv, o6);
                        if (width > 56) o7 = Fma.MultiplyAdd(ld.Load8(vr, c0 + 56), pv, o7);
                    }
                    var iv = Vector256.Create(inv);
                    Avx.Store(oh + c0, Avx.Multiply(o0, iv));
                    if (width > 8) Avx.Store(oh + c0 + 8, Avx.Multiply(o1, iv));
                    if (width > 16) Avx.Store(oh + c0 + 16, Avx.Multiply(o2, iv));
                    if (width > 24) Avx.Store(oh + c0 + 24, Avx.Multiply(o3, iv));
                    if (width > 32) Avx.Store(oh + c0 + 32, Avx.Multiply(o4, iv));
                    if (width > 40) Avx.Store(oh + c0 + 40, Avx.Multiply(o5, iv));
                    if (width > 48) Avx.Store(oh + c0 + 48, Avx.Multiply(o6, iv));
                    if (width > 56) Avx.Store(oh + c0 + 56, Avx.Multiply(o7, iv));
                }
            else
            {
                new Span<float>(oh, d).Clear();
                for (int m = 0; m < total; m++)
                {
                    float pm = sh[m];
                    if (pm == 0) continue;
                    byte* vr = values + m * rowBytes;
                    for (int c = 0; c < d; c++) oh[c] += pm * ld.At(vr, c);
                }
                for (int c = 0; c < d; c++) oh[c] *= inv;
            }
        }
    }

    private interface IRow
    {
        int Size { get; }
        Vector256<float> Load8(byte* row, int i);
        float At(byte* row, int i);
    }

    private readonly struct F32Row : IRow
    {
        public int Size => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public Vector256<float> Load8(byte* row, int i) => Avx.LoadVector256((float*)row + i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public float At(byte* row, int i) => ((float*)row)[i];
    }

    private readonly struct Bf16Row : IRow
    {
        public int Size => 2;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public Vector256<float> Load8(byte* row, int i) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + i), 16).AsSingle();
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public float At(byte* row, int i) => LinearKernels.FromBFloat16(((ushort*)row)[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp(Vector256<float> x)
    {
#if NET9_0_OR_GREATER
        return Vector256.Exp(x);
#else
        return Vector256.Create(MathF.Exp(x[0]), MathF.Exp(x[1]), MathF.Exp(x[2]), MathF.Exp(x[3]), MathF.Exp(x[4]), MathF.Exp(x[5]), MathF.Exp(x[6]), MathF.Exp(x[7]));
#endif
    }

    private static void Add(float* h, float* d, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8) (Vector256.Load(h + i) + Vector256.Load(d + i)).Store(h + i);
        for (; i < n; i++) h[i] += d[i];
    }

    /// <summary><c>gate = silu(gate) * up</c> (<c>silu(g) = g / (1 + exp(-g))</c>).</summary>
    private static void SiluMul(float* gate, float* up, int n)
    {
        int i = 0;
        var one = Vector256.Create(1f);
        for (; i + 8 <= n; i += 8)
        {
            var g = Vector256.Load(gate + i);
            (g / (one + Exp(-g)) * Vector256.Load(up + i)).Store(gate + i);
        }
        for (; i < n; i++) gate[i] = gate[i] / (1f + MathF.Exp(-gate[i])) * up[i];
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
    }
}
