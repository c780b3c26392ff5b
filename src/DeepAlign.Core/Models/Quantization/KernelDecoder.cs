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
    private float* _scratch;
    private long _scratchFloats;
    private bool _disposed;

    /// <summary>Stopwatch ticks spent in RoPE, the cache writes and attention while <see cref="KernelLinear.Profiling"/>
    /// is on (a benchmark hook).</summary>
    internal static long AttentionTicks { get; set; }

    /// <summary>Steps run through this decoder (a test and benchmark hook).</summary>
    internal long Steps { get; private set; }

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
        EnsureScratch(need);
        float* h = _scratch, xn = h + rows * hidden, proj = xn + rows * hidden, q = proj + rows * hidden;
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
            var (keys, values) = cache.Buffers(l, total);
            long capacity = keys.shape[2];
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
            if (KernelLinear.Profiling) AttentionTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0;
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
        Steps++;
        Norm(_finalNorm, h, xn, rows, hidden);
        var logits = empty(new long[] { rows, 1, vocab }, ScalarType.Float32);
        _head.RunFloat32(xn, (float*)TensorData.Pointer(logits), rows, threads);
        return logits;
    }

    private void EnsureScratch(long floats)
    {
        if (floats <= _scratchFloats) return;
        if (_scratch != null) NativeMemory.AlignedFree(_scratch);
        _scratchFloats = Math.Max(floats, _scratchFloats * 2);
        _scratch = (float*)NativeMemory.AlignedAlloc((nuint)(_scratchFloats * 4), 64);
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
    /// cached positions of one key/value head, each key and value row read once for all of them (positions a false
    /// <paramref name="real"/> entry marks are skipped, except the new one, the last). <paramref name="scores"/> holds
    /// <c>groups * total</c> floats.</summary>
    private static void Attend(float* q, int groups, byte* keys, byte* values, bool bf16, int d, int total, float scale, ReadOnlySpan<bool> real,
        float* scores, float* output)
    {
        int elem = bf16 ? 2 : 4;
        for (int j = 0; j < total; j++)
        {
            bool masked = !real.IsEmpty && j < total - 1 && !real[j];
            byte* key = keys + (long)j * d * elem;
            for (int h = 0; h < groups; h++)
                scores[h * total + j] = masked ? float.NegativeInfinity
                    : (bf16 ? DotBf16(q + h * d, (ushort*)key, d) : Dot(q + h * d, (float*)key, d)) * scale;
        }
        for (int h = 0; h < groups; h++)
        {
            float* sh = scores + h * total;
            float max = float.NegativeInfinity;
            for (int j = 0; j < total; j++) if (sh[j] > max) max = sh[j];
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
            for (int j = 0; j < total; j++) sh[j] *= inv;
        }
        new Span<float>(output, groups * d).Clear();
        for (int j = 0; j < total; j++)
        {
            byte* value = values + (long)j * d * elem;
            for (int h = 0; h < groups; h++)
            {
                float pj = scores[h * total + j];
                if (pj == 0) continue;
                if (bf16) AxpyBf16(output + h * d, pj, (ushort*)value, d);
                else Axpy(output + h * d, pj, (float*)value, d);
            }
        }
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        var acc = Vector256<float>.Zero;
        for (; i + 8 <= n; i += 8) acc += Vector256.Load(a + i) * Vector256.Load(b + i);
        float s = Vector256.Sum(acc);
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> LoadBf16(ushort* p) =>
        Avx2.IsSupported ? Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle()
            : Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(p).ToVector256()), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float DotBf16(float* a, ushort* b, int n)
    {
        int i = 0;
        var acc = Vector256<float>.Zero;
        for (; i + 8 <= n; i += 8) acc += Vector256.Load(a + i) * LoadBf16(b + i);
        float s = Vector256.Sum(acc);
        for (; i < n; i++) s += a[i] * LinearKernels.FromBFloat16(b[i]);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(float* y, float a, float* x, int n)
    {
        int i = 0;
        var av = Vector256.Create(a);
        for (; i + 8 <= n; i += 8) (Vector256.Load(y + i) + av * Vector256.Load(x + i)).Store(y + i);
        for (; i < n; i++) y[i] += a * x[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AxpyBf16(float* y, float a, ushort* x, int n)
    {
        int i = 0;
        var av = Vector256.Create(a);
        for (; i + 8 <= n; i += 8) (Vector256.Load(y + i) + av * LoadBf16(x + i)).Store(y + i);
        for (; i < n; i++) y[i] += a * LinearKernels.FromBFloat16(x[i]);
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
        if (_scratch != null) NativeMemory.AlignedFree(_scratch);
        _scratch = null;
    }
}
