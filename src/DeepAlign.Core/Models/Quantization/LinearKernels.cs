using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DeepAlign.Models.Quantization;

/// <summary>Weight storage the CPU kernels read.</summary>
internal enum KernelWeights
{
    Float32,
    BFloat16,
    Int8,

    /// <summary>int8 weights stored offset as unsigned bytes (<c>q + 128</c>) with per-output-channel scales, multiplied
    /// with int8 activations (per block of 32, <c>scale = max |x| / 127</c>) by integer dot products
    /// (<see cref="LinearKernels.RunW8A8"/>).</summary>
    Int8W8A8,
}

/// <summary>
/// Small-batch matrix-vector kernels for decoding on the CPU: <c>y[r, o] = scale[o] * sum_i W[o, i] x[r, i] + bias[o]</c>
/// with W row-major <c>[out, in]</c> in float32, bfloat16 or int8 (per-output-channel scales), x and y float32. Each
/// weight row is read once per call (four rows at a time, every input row reusing them from cache), converted to
/// float32 in registers and accumulated with fused multiply-adds: AVX-512 when present, else AVX2 + FMA, else scalar
/// code. Output rows are split across threads when more than one thread is allowed.
/// </summary>
internal static unsafe class LinearKernels
{
    /// <summary>The widest instruction set the kernels use on this CPU.</summary>
    public static string InstructionSet => Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA" : "scalar";

    /// <summary>Whether the W8A8 kernels use integer dot-product instructions (AVX-VNNI) on this CPU and runtime.</summary>
#if NET9_0_OR_GREATER
    public static bool W8A8Simd => AvxVnni.IsSupported && Fma.IsSupported;
#else
    public static bool W8A8Simd => false;
#endif

    /// <summary>How far ahead of each weight row the SIMD loops prefetch (bytes): about two blocks of four rows of the
    /// model's projections, far enough to cover DRAM latency at the single-thread bandwidth (measured best between 8 and 16
    /// KiB on the development machine).</summary>
    internal const int PrefetchDistance = 16 * 1024;

    /// <summary>Forces the scalar code (a test hook, to check it against the SIMD paths).</summary>
    internal static bool ForceScalar { get; set; }

    /// <summary>Span form of <see cref="Run(KernelWeights, void*, float*, float*, float*, float*, int, int, int, int)"/>
    /// (empty scales or bias: none).</summary>
    public static void Run(KernelWeights kind, ReadOnlySpan<byte> w, ReadOnlySpan<float> scales, ReadOnlySpan<float> bias, ReadOnlySpan<float> x, Span<float> y,
        int rows, int inFeatures, int outFeatures, int threads)
    {
        int size = kind switch { KernelWeights.Float32 => 4, KernelWeights.BFloat16 => 2, _ => 1 };
        if (w.Length < (long)inFeatures * outFeatures * size || x.Length < (long)rows * inFeatures || y.Length < (long)rows * outFeatures)
            throw new ArgumentException("A buffer is smaller than the shapes need.");
        fixed (byte* pw = w)
        fixed (float* ps = scales, pb = bias, px = x, py = y)
            Run(kind, pw, scales.IsEmpty ? null : ps, bias.IsEmpty ? null : pb, px, py, rows, inFeatures, outFeatures, threads);
    }

    /// <summary>As <see cref="Run(KernelWeights, void*, float*, float*, float*, float*, int, int, int, int)"/> with bfloat16
    /// activations: <paramref name="x"/> is converted to float32 once, the float32 result is rounded to bfloat16 into
    /// <paramref name="y"/> (round to nearest even, as libtorch).</summary>
    public static void RunBFloat16Activations(KernelWeights kind, void* w, float* scales, float* bias, ushort* x, ushort* y, int rows, int inFeatures, int outFeatures, int threads)
    {
        long nx = (long)rows * inFeatures, ny = (long)rows * outFeatures;
        var buffer = (float*)NativeMemory.AlignedAlloc((nuint)((nx + ny) * 4), 64);
        try
        {
            float* x32 = buffer, y32 = buffer + nx;
            long i = 0;
            if (Avx512F.IsSupported)
                for (; i + 16 <= nx; i += 16)
                    Avx512F.Store(x32 + i, Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(x + i)), 16).AsSingle());
            for (; i < nx; i++) x32[i] = FromBFloat16(x[i]);
            Run(kind, w, scales, bias, x32, y32, rows, inFeatures, outFeatures, threads);
            for (long k = 0; k < ny; k++) y[k] = ToBFloat16(y32[k]);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    public static void Run(KernelWeights kind, void* w, float* scales, float* bias, float* x, float* y, int rows, int inFeatures, int outFeatures, int threads)
    {
        if (kind == KernelWeights.Int8W8A8)
        {
            RunW8A8((byte*)w, scales, bias, x, y, rows, inFeatures, outFeatures, threads);
            return;
        }
        int blocks = (outFeatures + 3) / 4;
        if (threads <= 1 || blocks < 8)
        {
            RunBlocks(kind, w, scales, bias, x, y, rows, inFeatures, outFeatures, 0, blocks);
            return;
        }
        int parts = Math.Min(threads, blocks / 4);
        nint wp = (nint)w, sp = (nint)scales, bp = (nint)bias, xp = (nint)x, yp = (nint)y;
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            int from = (int)((long)blocks * part / parts), to = (int)((long)blocks * (part + 1) / parts);
            RunBlocks(kind, (void*)wp, (float*)sp, (float*)bp, (float*)xp, (float*)yp, rows, inFeatures, outFeatures, from, to);
        });
    }

    private static void RunBlocks(KernelWeights kind, void* w, float* scales, float* bias, float* x, float* y, int rows, int n, int outFeatures, int fromBlock, int toBlock)
    {
        switch (kind)
        {
            case KernelWeights.Float32: RunBlocks<F32>(w, scales, bias, x, y, rows, n, outFeatures, fromBlock, toBlock); break;
            case KernelWeights.BFloat16: RunBlocks<Bf16>(w, scales, bias, x, y, rows, n, outFeatures, fromBlock, toBlock); break;
            default: RunBlocks<I8>(w, scales, bias, x, y, rows, n, outFeatures, fromBlock, toBlock); break;
        }
    }

    private static void RunBlocks<TLoad>(void* w, float* scales, float* bias, float* x, float* y, int rows, int n, int outFeatures, int fromBlock, int toBlock)
        where TLoad : struct, ILoad
    {
        int elementSize = default(TLoad).Size;
        Span<float> acc = stackalloc float[4];
        for (int block = fromBlock; block < toBlock; block++)
        {
            int o0 = block * 4, count = Math.Min(4, outFeatures - o0);
            byte* row0 = (byte*)w + (long)o0 * n * elementSize;
            for (int r = 0; r < rows; r++)
            {
                float* xr = x + (long)r * n;
                if (count == 4) Dot4<TLoad>(row0, (long)n * elementSize, xr, n, acc);
                else
                    for (int k = 0; k < count; k++) acc[k] = Dot1<TLoad>(row0 + (long)k * n * elementSize, xr, n);
                float* yr = y + (long)r * outFeatures + o0;
                for (int k = 0; k < count; k++)
                {
                    float v = acc[k];
                    if (scales != null) v *= scales[o0 + k];
                    if (bias != null) v += bias[o0 + k];
                    yr[k] = v;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4<TLoad>(byte* w0, long stride, float* x, int n, Span<float> result) where TLoad : struct, ILoad
    {
        var ld = default(TLoad);
        int i = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (!ForceScalar && Avx512F.IsSupported && n >= 16)
        {
            // Two independent accumulators per row hide the FMA latency.
            Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int bytes = 32 * ld.Size;
            for (; i + 32 <= n; i += 32)
            {
                // The weights are read once, so the hardware prefetcher's short per-row streams leave DRAM idle: request
                // the lines PrefetchDistance bytes ahead of each row into L2 (docs/performance.md, round 3).
                byte* p = w0 + PrefetchDistance + (long)i * ld.Size;
                for (int l = 0; l < bytes; l += 64)
                {
                    Sse.Prefetch1(p + l);
                    Sse.Prefetch1(p + stride + l);
                    Sse.Prefetch1(p + 2 * stride + l);
                    Sse.Prefetch1(p + 3 * stride + l);
                }
                var xv = Avx512F.LoadVector512(x + i);
                var xw = Avx512F.LoadVector512(x + i + 16);
                a0 = Avx512F.FusedMultiplyAdd(ld.L16(w0, i), xv, a0);
                a1 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + stride, i), xv, a1);
                a2 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + 2 * stride, i), xv, a2);
                a3 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + 3 * stride, i), xv, a3);
                b0 = Avx512F.FusedMultiplyAdd(ld.L16(w0, i + 16), xw, b0);
                b1 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + stride, i + 16), xw, b1);
                b2 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + 2 * stride, i + 16), xw, b2);
                b3 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + 3 * stride, i + 16), xw, b3);
            }
            for (; i + 16 <= n; i += 16)
            {
                var xv = Avx512F.LoadVector512(x + i);
                a0 = Avx512F.FusedMultiplyAdd(ld.L16(w0, i), xv, a0);
                a1 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + stride, i), xv, a1);
                a2 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + 2 * stride, i), xv, a2);
                a3 = Avx512F.FusedMultiplyAdd(ld.L16(w0 + 3 * stride, i), xv, a3);
            }
            s0 = Vector512.Sum(a0 + b0); s1 = Vector512.Sum(a1 + b1); s2 = Vector512.Sum(a2 + b2); s3 = Vector512.Sum(a3 + b3);
        }
        else if (!ForceScalar && Avx2.IsSupported && Fma.IsSupported && n >= 8)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i + 8 <= n; i += 8)
            {
                if (((i * ld.Size) & 63) == 0)
                {
                    byte* p = w0 + PrefetchDistance + (long)i * ld.Size;
                    Sse.Prefetch1(p);
                    Sse.Prefetch1(p + stride);
                    Sse.Prefetch1(p + 2 * stride);
                    Sse.Prefetch1(p + 3 * stride);
                }
                var xv = Avx.LoadVector256(x + i);
                a0 = Fma.MultiplyAdd(ld.L8(w0, i), xv, a0);
                a1 = Fma.MultiplyAdd(ld.L8(w0 + stride, i), xv, a1);
                a2 = Fma.MultiplyAdd(ld.L8(w0 + 2 * stride, i), xv, a2);
                a3 = Fma.MultiplyAdd(ld.L8(w0 + 3 * stride, i), xv, a3);
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        for (; i < n; i++)
        {
            float xi = x[i];
            s0 += ld.S(w0, i) * xi;
            s1 += ld.S(w0 + stride, i) * xi;
            s2 += ld.S(w0 + 2 * stride, i) * xi;
            s3 += ld.S(w0 + 3 * stride, i) * xi;
        }
        result[0] = s0; result[1] = s1; result[2] = s2; result[3] = s3;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot1<TLoad>(byte* w, float* x, int n) where TLoad : struct, ILoad
    {
        var ld = default(TLoad);
        int i = 0;
        float s = 0;
        if (!ForceScalar && Avx512F.IsSupported && n >= 16)
        {
            var a = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16) a = Avx512F.FusedMultiplyAdd(ld.L16(w, i), Avx512F.LoadVector512(x + i), a);
            s = Vector512.Sum(a);
        }
        else if (!ForceScalar && Avx2.IsSupported && Fma.IsSupported && n >= 8)
        {
            var a = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) a = Fma.MultiplyAdd(ld.L8(w, i), Avx.LoadVector256(x + i), a);
            s = Vector256.Sum(a);
        }
        for (; i < n; i++) s += ld.S(w, i) * x[i];
        return s;
    }

    private interface ILoad
    {
        int Size { get; }
        Vector512<float> L16(byte* row, int i);
        Vector256<float> L8(byte* row, int i);
        float S(byte* row, int i);
    }

    private readonly struct F32 : ILoad
    {
        public int Size => 4;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public Vector512<float> L16(byte* row, int i) => Avx512F.LoadVector512((float*)row + i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public Vector256<float> L8(byte* row, int i) => Avx.LoadVector256((float*)row + i);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public float S(byte* row, int i) => ((float*)row)[i];
    }

    private readonly struct Bf16 : ILoad
    {
        public int Size => 2;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> L16(byte* row, int i) => Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256((ushort*)row + i)), 16).AsSingle();
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> L8(byte* row, int i) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + i), 16).AsSingle();
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public float S(byte* row, int i) => BitConverter.Int32BitsToSingle(((ushort*)row)[i] << 16);
    }

    private readonly struct I8 : ILoad
    {
        public int Size => 1;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> L16(byte* row, int i) => Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128((sbyte*)row + i)));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> L8(byte* row, int i) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)row + i));
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public float S(byte* row, int i) => ((sbyte*)row)[i];
    }

    /// <summary>Activation block of the W8A8 path (as llama.cpp's q8_0).</summary>
    public const int W8A8Block = 32;

    /// <summary>
    /// Weight-and-activation int8: <c>y[r, o] = scale[o] * sum_b sx[r, b] * sum_{i in b} (u[o, i] - 128) qx[r, i] + bias[o]</c>,
    /// with <c>u</c> the offset weights (<c>q + 128</c>, row-major <c>[out, in]</c> bytes) and each input row quantized per
    /// block of <see cref="W8A8Block"/> values to <c>qx = round(x / sx)</c>, <c>sx = max |x| / 127</c>. The integer products
    /// run through <c>vpdpbusd</c> (AVX-VNNI: unsigned weights x signed activations, 32 per instruction, int32 sums);
    /// the offset's share, <c>128 * sum_b sx_b sum qx_b</c>, depends on the input row only and is subtracted once per row.
    /// Without AVX-VNNI (or with <see cref="ForceScalar"/>) the same integer sums are computed by scalar code.
    /// </summary>
    public static void RunW8A8(byte* w, float* scales, float* bias, float* x, float* y, int rows, int n, int outFeatures, int threads)
    {
        int blocks = (n + W8A8Block - 1) / W8A8Block;
        long padded = (long)blocks * W8A8Block;
        var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * padded + (long)rows * blocks * 4 + rows * 4), 64);
        try
        {
            sbyte* qx = (sbyte*)buffer;
            float* sx = (float*)(buffer + rows * padded);
            float* correction = sx + (long)rows * blocks;
            for (int r = 0; r < rows; r++)
                correction[r] = QuantizeActivations(x + (long)r * n, n, qx + r * padded, sx + (long)r * blocks);
            int groups = (outFeatures + 3) / 4;
            if (threads <= 1 || groups < 8)
            {
                W8A8Groups(w, scales, bias, qx, sx, correction, y, rows, n, outFeatures, 0, groups);
                return;
            }
            int parts = Math.Min(threads, groups / 4);
            nint wp = (nint)w, sp = (nint)scales, bp = (nint)bias, qp = (nint)qx, xsp = (nint)sx, cp = (nint)correction, yp = (nint)y;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                int from = (int)((long)groups * part / parts), to = (int)((long)groups * (part + 1) / parts);
                W8A8Groups((byte*)wp, (float*)sp, (float*)bp, (sbyte*)qp, (float*)xsp, (float*)cp, (float*)yp, rows, n, outFeatures, from, to);
            });
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>Quantizes one row per block (zero-padded to whole blocks); returns the offset correction
    /// <c>128 * sum_b sx_b * sum qx_b</c> over the blocks the SIMD path handles whole.</summary>
    internal static float QuantizeActivations(float* x, int n, sbyte* qx, float* sx)
    {
        int blocks = (n + W8A8Block - 1) / W8A8Block;
        double correction = 0;
        for (int b = 0; b < blocks; b++)
        {
            int i0 = b * W8A8Block, len = Math.Min(W8A8Block, n - i0);
            float max = 0;
            for (int i = 0; i < len; i++) max = Math.Max(max, Math.Abs(x[i0 + i]));
            float scale = max / 127f;
            float inv = scale > 0 ? 1f / scale : 0f;
            int sum = 0;
            for (int i = 0; i < W8A8Block; i++)
            {
                int q = i < len ? (int)Math.Clamp(MathF.Round(x[i0 + i] * inv, MidpointRounding.ToEven), -127f, 127f) : 0;
                qx[i0 + i] = (sbyte)q;
                sum += q;
            }
            sx[b] = scale;
            if (len == W8A8Block) correction += 128.0 * scale * sum;
        }
        return (float)correction;
    }

    private static void W8A8Groups(byte* w, float* scales, float* bias, sbyte* qx, float* sx, float* correction, float* y, int rows, int n, int outFeatures, int from, int to)
    {
        int blocks = (n + W8A8Block - 1) / W8A8Block, whole = n / W8A8Block;
        long padded = (long)blocks * W8A8Block;
#if NET9_0_OR_GREATER
        bool simd = !ForceScalar && AvxVnni.IsSupported && Fma.IsSupported;
#else
        const bool simd = false; // AvxVnni is a preview API before .NET 9: the scalar sums
#endif
        Span<float> acc = stackalloc float[4];
        for (int g = from; g < to; g++)
        {
            int o0 = g * 4, count = Math.Min(4, outFeatures - o0);
            for (int r = 0; r < rows; r++)
            {
                sbyte* q = qx + r * padded;
                float* s = sx + (long)r * blocks;
                int done = 0;
                acc.Clear();
                if (simd && count == 4 && whole > 0)
                {
                    W8A8Dot4(w + (long)o0 * n, n, q, s, whole, acc);
                    for (int k = 0; k < 4; k++) acc[k] -= correction[r];
                    done = whole;
                }
                for (int k = 0; k < count; k++)
                {
                    byte* row = w + (long)(o0 + k) * n;
                    float v = acc[k];
                    for (int b = done; b < blocks; b++)
                    {
                        int i0 = b * W8A8Block, len = Math.Min(W8A8Block, n - i0), sum = 0;
                        for (int i = 0; i < len; i++) sum += (row[i0 + i] - 128) * q[i0 + i];
                        v += s[b] * sum;
                    }
                    v *= scales[o0 + k];
                    if (bias != null) v += bias[o0 + k];
                    y[(long)r * outFeatures + o0 + k] = v;
                }
            }
        }
    }

#if NET9_0_OR_GREATER
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void W8A8Dot4(byte* w0, long stride, sbyte* q, float* s, int whole, Span<float> result)
    {
        Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < whole; b++)
        {
            int i = b * W8A8Block;
            var xv = Avx.LoadVector256(q + i);
            var sv = Vector256.Create(s[b]);
            var d0 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(w0 + i), xv);
            var d1 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(w0 + stride + i), xv);
            var d2 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(w0 + 2 * stride + i), xv);
            var d3 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx.LoadVector256(w0 + 3 * stride + i), xv);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(d0), sv, a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(d1), sv, a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(d2), sv, a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(d3), sv, a3);
        }
        result[0] = Vector256.Sum(a0); result[1] = Vector256.Sum(a1); result[2] = Vector256.Sum(a2); result[3] = Vector256.Sum(a3);
    }
#else
    private static void W8A8Dot4(byte* w0, long stride, sbyte* q, float* s, int whole, Span<float> result) => throw new PlatformNotSupportedException();
#endif

    /// <summary>bfloat16 bits of a float32 value, rounded to nearest even (NaN stays NaN), as libtorch converts.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>float32 value of bfloat16 bits.</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Measures the read bandwidth of one thread streaming <paramref name="bytes"/> bytes (GB/s; best of
    /// <paramref name="repeats"/>), the ceiling for weight streaming in a decode step.</summary>
    public static double MeasureReadBandwidth(long bytes = 1L << 30, int repeats = 3)
    {
        long count = bytes / 4;
        var buffer = (float*)NativeMemory.AlignedAlloc((nuint)(count * 4), 64);
        try
        {
            new Span<float>(buffer, (int)Math.Min(count, int.MaxValue)).Fill(1f);
            for (long i = int.MaxValue; i < count; i++) buffer[i] = 1f;
            double best = 0;
            for (int r = 0; r < repeats; r++)
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                float sum = SumAll(buffer, count);
                double seconds = sw.Elapsed.TotalSeconds;
                if (sum < 0) throw new InvalidOperationException("unreachable");
                best = Math.Max(best, count * 4 / seconds / 1e9);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private static float SumAll(float* p, long count)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i + 32 <= count; i += 32)
            {
                a0 += Vector256.Load(p + i); a1 += Vector256.Load(p + i + 8);
                a2 += Vector256.Load(p + i + 16); a3 += Vector256.Load(p + i + 24);
            }
            float s = Vector256.Sum(a0 + a1 + a2 + a3);
            for (; i < count; i++) s += p[i];
            return s;
        }
        float t = 0;
        for (; i < count; i++) t += p[i];
        return t;
    }
}
