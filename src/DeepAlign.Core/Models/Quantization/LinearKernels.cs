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


    /// <summary>How far ahead of each weight row the SIMD loops prefetch (bytes): about two blocks of four rows of the
    /// model's projections, far enough to cover DRAM latency at the single-thread bandwidth (measured best between 8 and 16
    /// KiB on the development machine).</summary>
    internal const int PrefetchDistance = 16 * 1024;

    /// <summary>Skips the AVX-512 loops of the float kernels, so the AVX2 + FMA code runs (a test hook).</summary>
    internal static bool ForceAvx2 { get; set; }

    /// <summary>Runs batch-1 calls through the four-row blocks instead of the one-row stream (a test and benchmark hook).</summary>
    internal static bool ForceFourRows { get; set; }

    /// <summary>Software prefetch in the batch-1 stream on top of the hardware prefetcher: null (default) for int8 weights
    /// only; true or false for every format (a benchmark A/B hook). On packed float32/bfloat16 weights it measured 8-17%
    /// slower per decode step; int8, with more work per cache line, was ~7% faster with it (docs/performance.md,
    /// "Round 4").</summary>
    internal static bool? StreamPrefetch { get; set; }

    /// <summary>The batch-1 bfloat16 stream reads its input rounded to bfloat16 (round to nearest even, as libtorch's
    /// bfloat16 and llama.cpp's bf16 matmuls do) instead of float32 pairs: half the bytes of input per weight line, so a
    /// long input row (8192 values of a 1B model's down projection) stays in L1 next to the streamed weights. Default
    /// true; false is the A/B hook (docs/performance.md, "Round 4").</summary>
    internal static bool StreamBFloat16Input { get; set; } = true;

    /// <summary>Batch-1 calls whose input row is wider than this (bytes, in the form the kernel reads it: float32, or
    /// bfloat16 under <see cref="StreamBFloat16Input"/>) run through the four-row blocks, which share each input load
    /// between four weight rows, instead of the one-row stream: a wider input no longer stays in a 32 KiB L1 next to the
    /// streamed weights (float32 8192-wide rows: 13.5-17.7 GB/s streamed against 19.3-22.8 in four-row blocks,
    /// docs/performance.md, round 4). Default 24 KiB: the 0.5B model's 4864-wide float32 rows (19 KiB) decoded ~5% faster
    /// streamed, the 8192-wide ones (32 KiB) faster in blocks. A test and benchmark hook.</summary>
    internal static long WideInputBytes { get; set; } = DefaultWideInputBytes;

    internal const long DefaultWideInputBytes = 24 * 1024;

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
        // bfloat16 on AVX-512: the input rows once in even/odd order per 32 values (BFloat16Pairs), so each 64-byte load
        // of 32 weights becomes 32 float32 values by one shift and one mask instead of two widening loads and shifts.
        // At batch 1 the input is read as bfloat16 instead (xb, StreamBFloat16Input).
        float* pairs = null;
        ushort* xb = null;
        if (kind == KernelWeights.BFloat16 && BatchOneSimd(rows) && StreamBFloat16Input && inFeatures >= 32)
        {
            xb = (ushort*)NativeMemory.AlignedAlloc((nuint)inFeatures * 2, 64);
            RoundToBFloat16(x, xb, inFeatures);
        }
        else if (kind == KernelWeights.BFloat16 && !ForceScalar && !ForceAvx2 && Avx512F.IsSupported && inFeatures >= 32)
        {
            pairs = (float*)NativeMemory.AlignedAlloc((nuint)((long)rows * inFeatures * 4), 64);
            for (int r = 0; r < rows; r++) PermuteEvenOdd(x + (long)r * inFeatures, pairs + (long)r * inFeatures, inFeatures);
        }
        try
        {
            if (threads <= 1 || blocks < 8)
            {
                RunBlocks(kind, w, scales, bias, x, pairs, xb, y, rows, inFeatures, outFeatures, 0, blocks);
                return;
            }
            int parts = Math.Min(threads, blocks / 4);
            nint wp = (nint)w, sp = (nint)scales, bp = (nint)bias, xp = (nint)x, pp = (nint)pairs, xbp = (nint)xb, yp = (nint)y;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                int from = (int)((long)blocks * part / parts), to = (int)((long)blocks * (part + 1) / parts);
                RunBlocks(kind, (void*)wp, (float*)sp, (float*)bp, (float*)xp, (float*)pp, (ushort*)xbp, (float*)yp, rows, inFeatures, outFeatures, from, to);
            });
        }
        finally
        {
            if (pairs != null) NativeMemory.AlignedFree(pairs);
            if (xb != null) NativeMemory.AlignedFree(xb);
        }
    }

    /// <summary>Whether a call of <paramref name="rows"/> rows takes the AVX-512 batch-1 paths (the one-row stream and
    /// bfloat16 input), which the test hooks can switch off.</summary>
    private static bool BatchOneSimd(int rows) => rows == 1 && !ForceScalar && !ForceAvx2 && !ForceFourRows && Avx512F.IsSupported;

    /// <summary>Per whole chunk of 32 values: the 16 even-indexed values, then the 16 odd-indexed ones (the order in
    /// which <see cref="Dot4BFloat16Pairs"/> unpacks a 64-byte load of bfloat16 weights); the tail stays in place.</summary>
    internal static void PermuteEvenOdd(float* x, float* pairs, int n)
    {
        int c = 0;
        for (; c + 32 <= n; c += 32)
            for (int k = 0; k < 16; k++) { pairs[c + k] = x[c + 2 * k]; pairs[c + 16 + k] = x[c + 2 * k + 1]; }
        for (; c < n; c++) pairs[c] = x[c];
    }

    private static void RunBlocks(KernelWeights kind, void* w, float* scales, float* bias, float* x, float* pairs, ushort* xb, float* y, int rows, int n, int outFeatures,
        int fromBlock, int toBlock)
    {
        switch (kind)
        {
            case KernelWeights.Float32: RunBlocks<F32>(w, scales, bias, x, null, null, y, rows, n, outFeatures, fromBlock, toBlock); break;
            case KernelWeights.BFloat16: RunBlocks<Bf16>(w, scales, bias, x, pairs, xb, y, rows, n, outFeatures, fromBlock, toBlock); break;
            default: RunBlocks<I8>(w, scales, bias, x, null, null, y, rows, n, outFeatures, fromBlock, toBlock); break;
        }
    }

    /// <summary><paramref name="pairs"/>: float32 input in even/odd order (bfloat16 weights), or null;
    /// <paramref name="xb"/>: the input rounded to bfloat16 (bfloat16 weights at batch 1), or null.</summary>
    private static void RunBlocks<TLoad>(void* w, float* scales, float* bias, float* x, float* pairs, ushort* xb, float* y, int rows, int n, int outFeatures,
        int fromBlock, int toBlock) where TLoad : struct, ILoad
    {
        int elementSize = default(TLoad).Size;
        long inputBytes = (long)n * (xb != null ? 2 : 4);
        if (BatchOneSimd(rows) && n >= 16 && inputBytes <= WideInputBytes)
        {
            // Batch 1: one weight row after the other, so the block's rows are read as one sequential stream.
            int end = Math.Min(toBlock * 4, outFeatures);
            bool prefetch = StreamPrefetch ?? elementSize == 1;
            for (int o = fromBlock * 4; o < end; o++)
            {
                byte* row = (byte*)w + (long)o * n * elementSize;
                float v = xb != null ? DotStreamBFloat16Input(row, xb, n)
                    : pairs != null ? DotStreamBFloat16Pairs(row, x, pairs, n, prefetch) : DotStream<TLoad>(row, x, n, prefetch);
                if (scales != null) v *= scales[o];
                if (bias != null) v += bias[o];
                y[o] = v;
            }
            return;
        }
        Span<float> acc = stackalloc float[4];
        for (int block = fromBlock; block < toBlock; block++)
        {
            int o0 = block * 4, count = Math.Min(4, outFeatures - o0);
            byte* row0 = (byte*)w + (long)o0 * n * elementSize;
            for (int r = 0; r < rows; r++)
            {
                float* xr = x + (long)r * n;
                if (count == 4 && xb != null) Dot4BFloat16Input(row0, (long)n * elementSize, xb, n, acc);
                else if (xb != null)
                    for (int k = 0; k < count; k++) acc[k] = DotStreamBFloat16Input(row0 + (long)k * n * elementSize, xb, n);
                else if (count == 4 && pairs != null) Dot4BFloat16Pairs(row0, (long)n * elementSize, xr, pairs + (long)r * n, n, acc);
                else if (count == 4) Dot4<TLoad>(row0, (long)n * elementSize, xr, n, acc);
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
        if (!ForceScalar && !ForceAvx2 && Avx512F.IsSupported && n >= 16)
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

    /// <summary>Four bfloat16 rows against one input row, AVX-512: a 32-bit lane of a 64-byte load holds weights 2k
    /// (low half) and 2k+1 (high half), so <c>lane &lt;&lt; 16</c> is weight 2k and <c>lane &amp; 0xFFFF0000</c> weight 2k+1
    /// as float32, multiplied with the even and odd values of <paramref name="pairs"/>; the tail through the scalar code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4BFloat16Pairs(byte* w0, long stride, float* x, float* pairs, int n, Span<float> result)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        var high = Vector512.Create(0xFFFF0000u);
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            byte* p = w0 + PrefetchDistance + (long)i * 2;
            Sse.Prefetch1(p);
            Sse.Prefetch1(p + stride);
            Sse.Prefetch1(p + 2 * stride);
            Sse.Prefetch1(p + 3 * stride);
            var xe = Avx512F.LoadVector512(pairs + i);
            var xo = Avx512F.LoadVector512(pairs + i + 16);
            var d0 = Avx512F.LoadVector512((uint*)(w0 + (long)i * 2));
            var d1 = Avx512F.LoadVector512((uint*)(w0 + stride + (long)i * 2));
            var d2 = Avx512F.LoadVector512((uint*)(w0 + 2 * stride + (long)i * 2));
            var d3 = Avx512F.LoadVector512((uint*)(w0 + 3 * stride + (long)i * 2));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d0, 16).AsSingle(), xe, a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d1, 16).AsSingle(), xe, a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d2, 16).AsSingle(), xe, a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d3, 16).AsSingle(), xe, a3);
            b0 = Avx512F.FusedMultiplyAdd(Avx512F.And(d0, high).AsSingle(), xo, b0);
            b1 = Avx512F.FusedMultiplyAdd(Avx512F.And(d1, high).AsSingle(), xo, b1);
            b2 = Avx512F.FusedMultiplyAdd(Avx512F.And(d2, high).AsSingle(), xo, b2);
            b3 = Avx512F.FusedMultiplyAdd(Avx512F.And(d3, high).AsSingle(), xo, b3);
        }
        float s0 = Vector512.Sum(a0 + b0), s1 = Vector512.Sum(a1 + b1), s2 = Vector512.Sum(a2 + b2), s3 = Vector512.Sum(a3 + b3);
        var ld = default(Bf16);
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

    /// <summary><see cref="Dot4BFloat16Pairs"/> against the input in bfloat16 (<paramref name="xb"/>, natural order, as
    /// <see cref="DotStreamBFloat16Input"/>): four rows share each input load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4BFloat16Input(byte* w0, long stride, ushort* xb, int n, Span<float> result)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        var high = Vector512.Create(0xFFFF0000u);
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            byte* p = w0 + PrefetchDistance + (long)i * 2;
            Sse.Prefetch1(p);
            Sse.Prefetch1(p + stride);
            Sse.Prefetch1(p + 2 * stride);
            Sse.Prefetch1(p + 3 * stride);
            var xv = Avx512F.LoadVector512((uint*)(xb + i));
            var xe = Avx512F.ShiftLeftLogical(xv, 16).AsSingle();
            var xo = Avx512F.And(xv, high).AsSingle();
            var d0 = Avx512F.LoadVector512((uint*)(w0 + (long)i * 2));
            var d1 = Avx512F.LoadVector512((uint*)(w0 + stride + (long)i * 2));
            var d2 = Avx512F.LoadVector512((uint*)(w0 + 2 * stride + (long)i * 2));
            var d3 = Avx512F.LoadVector512((uint*)(w0 + 3 * stride + (long)i * 2));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d0, 16).AsSingle(), xe, a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d1, 16).AsSingle(), xe, a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d2, 16).AsSingle(), xe, a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d3, 16).AsSingle(), xe, a3);
            b0 = Avx512F.FusedMultiplyAdd(Avx512F.And(d0, high).AsSingle(), xo, b0);
            b1 = Avx512F.FusedMultiplyAdd(Avx512F.And(d1, high).AsSingle(), xo, b1);
            b2 = Avx512F.FusedMultiplyAdd(Avx512F.And(d2, high).AsSingle(), xo, b2);
            b3 = Avx512F.FusedMultiplyAdd(Avx512F.And(d3, high).AsSingle(), xo, b3);
        }
        float s0 = Vector512.Sum(a0 + b0), s1 = Vector512.Sum(a1 + b1), s2 = Vector512.Sum(a2 + b2), s3 = Vector512.Sum(a3 + b3);
        var ld = default(Bf16);
        for (; i < n; i++)
        {
            float xi = FromBFloat16(xb[i]);
            s0 += ld.S(w0, i) * xi;
            s1 += ld.S(w0 + stride, i) * xi;
            s2 += ld.S(w0 + 2 * stride, i) * xi;
            s3 += ld.S(w0 + 3 * stride, i) * xi;
        }
        result[0] = s0; result[1] = s1; result[2] = s2; result[3] = s3;
    }

    /// <summary>One weight row against one input row, AVX-512, for batch 1: four accumulators. Rows are read in order,
    /// one sequential stream that the hardware prefetcher follows; <paramref name="prefetch"/> (the A/B hook
    /// <see cref="StreamPrefetch"/>) also requests the lines <see cref="PrefetchDistance"/> ahead into L2, which measured
    /// slower (docs/performance.md, "Round 4").</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotStream<TLoad>(byte* w, float* x, int n, bool prefetch) where TLoad : struct, ILoad
    {
        var ld = default(TLoad);
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        int i = 0, bytes = 64 * ld.Size;
        for (; i + 64 <= n; i += 64)
        {
            if (prefetch)
            {
                byte* p = w + PrefetchDistance + (long)i * ld.Size;
                for (int l = 0; l < bytes; l += 64) Sse.Prefetch1(p + l);
            }
            a0 = Avx512F.FusedMultiplyAdd(ld.L16(w, i), Avx512F.LoadVector512(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(ld.L16(w, i + 16), Avx512F.LoadVector512(x + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(ld.L16(w, i + 32), Avx512F.LoadVector512(x + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(ld.L16(w, i + 48), Avx512F.LoadVector512(x + i + 48), a3);
        }
        for (; i + 16 <= n; i += 16) a0 = Avx512F.FusedMultiplyAdd(ld.L16(w, i), Avx512F.LoadVector512(x + i), a0);
        float s = Vector512.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) s += ld.S(w, i) * x[i];
        return s;
    }

    /// <summary><see cref="DotStream{TLoad}"/> for bfloat16 rows with the input in <see cref="PermuteEvenOdd"/> order
    /// (the unpack of <see cref="Dot4BFloat16Pairs"/>); the tail through the scalar code on <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotStreamBFloat16Pairs(byte* w, float* x, float* pairs, int n, bool prefetch)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, b0 = a0, b1 = a0;
        var high = Vector512.Create(0xFFFF0000u);
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            if (prefetch)
            {
                byte* p = w + PrefetchDistance + (long)i * 2;
                Sse.Prefetch1(p);
                Sse.Prefetch1(p + 64);
            }
            var d0 = Avx512F.LoadVector512((uint*)(w + (long)i * 2));
            var d1 = Avx512F.LoadVector512((uint*)(w + (long)i * 2 + 64));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d0, 16).AsSingle(), Avx512F.LoadVector512(pairs + i), a0);
            b0 = Avx512F.FusedMultiplyAdd(Avx512F.And(d0, high).AsSingle(), Avx512F.LoadVector512(pairs + i + 16), b0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d1, 16).AsSingle(), Avx512F.LoadVector512(pairs + i + 32), a1);
            b1 = Avx512F.FusedMultiplyAdd(Avx512F.And(d1, high).AsSingle(), Avx512F.LoadVector512(pairs + i + 48), b1);
        }
        for (; i + 32 <= n; i += 32)
        {
            var d0 = Avx512F.LoadVector512((uint*)(w + (long)i * 2));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d0, 16).AsSingle(), Avx512F.LoadVector512(pairs + i), a0);
            b0 = Avx512F.FusedMultiplyAdd(Avx512F.And(d0, high).AsSingle(), Avx512F.LoadVector512(pairs + i + 16), b0);
        }
        float s = Vector512.Sum((a0 + b0) + (a1 + b1));
        var ld = default(Bf16);
        for (; i < n; i++) s += ld.S(w, i) * x[i];
        return s;
    }

    /// <summary><see cref="DotStream{TLoad}"/> for bfloat16 rows against the input in bfloat16 (<paramref name="xb"/>,
    /// natural order): each 64-byte load of input unpacks into even and odd float32 lanes by the same shift and mask as
    /// the weights, so no permuted float32 copy is needed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotStreamBFloat16Input(byte* w, ushort* xb, int n)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, b0 = a0, b1 = a0;
        var high = Vector512.Create(0xFFFF0000u);
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            var d0 = Avx512F.LoadVector512((uint*)(w + (long)i * 2));
            var d1 = Avx512F.LoadVector512((uint*)(w + (long)i * 2 + 64));
            var x0 = Avx512F.LoadVector512((uint*)(xb + i));
            var x1 = Avx512F.LoadVector512((uint*)(xb + i + 32));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d0, 16).AsSingle(), Avx512F.ShiftLeftLogical(x0, 16).AsSingle(), a0);
            b0 = Avx512F.FusedMultiplyAdd(Avx512F.And(d0, high).AsSingle(), Avx512F.And(x0, high).AsSingle(), b0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(d1, 16).AsSingle(), Avx512F.ShiftLeftLogical(x1, 16).AsSingle(), a1);
            b1 = Avx512F.FusedMultiplyAdd(Avx512F.And(d1, high).AsSingle(), Avx512F.And(x1, high).AsSingle(), b1);
        }
        float s = Vector512.Sum((a0 + b0) + (a1 + b1));
        var ld = default(Bf16);
        for (; i < n; i++) s += ld.S(w, i) * FromBFloat16(xb[i]);
        return s;
    }

    /// <summary>Span form of <see cref="RoundToBFloat16(float*, ushort*, int)"/>.</summary>
    internal static void RoundToBFloat16(ReadOnlySpan<float> x, Span<ushort> xb)
    {
        if (xb.Length < x.Length) throw new ArgumentException("The destination is shorter than the input.", nameof(xb));
        fixed (float* px = x)
        fixed (ushort* pb = xb)
            RoundToBFloat16(px, pb, x.Length);
    }

    /// <summary><see cref="ToBFloat16"/> over <paramref name="n"/> values, 16 at a time on AVX-512.</summary>
    internal static void RoundToBFloat16(float* x, ushort* xb, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var one = Vector512.Create(1u);
            var bias = Vector512.Create(0x7FFFu);
            var quiet = Vector512.Create(0x40u);
            for (; i + 16 <= n; i += 16)
            {
                var v = Avx512F.LoadVector512(x + i);
                var bits = v.AsUInt32();
                var rounded = Avx512F.ShiftRightLogical(bits + bias + (Avx512F.ShiftRightLogical(bits, 16) & one), 16);
                var nan = Avx512F.ShiftRightLogical(bits, 16) | quiet;
                var isNaN = Avx512F.CompareNotEqual(v, v).AsUInt32();
                Avx.Store(xb + i, Avx512F.ConvertToVector256UInt16(Vector512.ConditionalSelect(isNaN, nan, rounded)));
            }
        }
        for (; i < n; i++) xb[i] = ToBFloat16(x[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot1<TLoad>(byte* w, float* x, int n) where TLoad : struct, ILoad
    {
        var ld = default(TLoad);
        int i = 0;
        float s = 0;
        if (!ForceScalar && !ForceAvx2 && Avx512F.IsSupported && n >= 16)
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

    /// <summary>The code that computes the W8A8 integer sums.</summary>
    internal enum W8A8Path
    {
        /// <summary>Scalar integer sums.</summary>
        Scalar,

        /// <summary>256-bit <c>vpmaddubsw</c> + <c>vpmaddwd</c> (unsigned |activation| x sign-adjusted weight).</summary>
        Avx2,

        /// <summary>512-bit <c>vpmaddubsw</c> + <c>vpmaddwd</c>, two blocks per instruction.</summary>
        Avx512BW,

        /// <summary>256-bit AVX-VNNI <c>vpdpbusd</c> (offset weight x activation, offset subtracted once per row).</summary>
        AvxVnni,
    }

    /// <summary>The fastest W8A8 path this CPU and runtime run.</summary>
    public static W8A8Path BestW8A8Path =>
#if NET9_0_OR_GREATER
        AvxVnni.IsSupported && Fma.IsSupported ? W8A8Path.AvxVnni :
#endif
        Avx512BW.IsSupported ? W8A8Path.Avx512BW : Avx2.IsSupported && Fma.IsSupported ? W8A8Path.Avx2 : W8A8Path.Scalar;

    /// <summary>Whether the W8A8 kernels use SIMD integer dot products on this CPU and runtime.</summary>
    public static bool W8A8Simd => BestW8A8Path != W8A8Path.Scalar;

    /// <summary>Runs the W8A8 sums through this path instead of the best one (a test hook; it must be supported here).</summary>
    internal static W8A8Path? ForceW8A8Path { get; set; }

    private static W8A8Path CurrentW8A8Path => ForceScalar ? W8A8Path.Scalar : ForceW8A8Path ?? BestW8A8Path;

    /// <summary>
    /// Weight-and-activation int8: <c>y[r, o] = scale[o] * sum_b sx[r, b] * sum_{i in b} q[o, i] qx[r, i] + bias[o]</c>,
    /// with the weights stored offset as bytes <c>u = q + 128</c> (row-major <c>[out, in]</c>; <c>q = u xor 0x80</c>) and
    /// each input row quantized per block of <see cref="W8A8Block"/> values to <c>qx = round(x / sx)</c>,
    /// <c>sx = max |x| / 127</c> (round half to even). Integer products, by <see cref="CurrentW8A8Path"/>:
    /// AVX-VNNI <c>vpdpbusd</c> on the offset bytes (the offset's share, <c>128 * sum_b sx_b sum qx_b</c>, depends on the
    /// input row only and is subtracted once per row); else <c>vpmaddubsw</c> of <c>|qx|</c> (unsigned, at most 127) with
    /// the weight carrying the activation's sign (<c>(u xor m') - m</c>, <c>m</c> = 0xFF where <c>qx &lt; 0</c>,
    /// <c>m' = m xor 0x80</c>; pair sums at most 2 * 127 * 127, so no saturation) and <c>vpmaddwd</c> into int32,
    /// 512-bit with AVX-512BW; else scalar code. Then one float FMA per block with the block scale.
    /// </summary>
    public static void RunW8A8(byte* w, float* scales, float* bias, float* x, float* y, int rows, int n, int outFeatures, int threads)
    {
        int blocks = (n + W8A8Block - 1) / W8A8Block;
        long padded = (long)blocks * W8A8Block;
        // Per row: qx, |qx|, m', m (bytes, padded), block scales, block scales repeated 8 times, correction.
        long rowBytes = 4 * padded + 4L * blocks + 32L * blocks + 4;
        var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * rowBytes + 64), 64);
        try
        {
            var path = CurrentW8A8Path;
            var a = new W8A8Rows(buffer, rows, n, blocks, padded);
            for (int r = 0; r < rows; r++)
                a.Correction[r] = QuantizeActivations(x + (long)r * n, n, a.Q(r), a.S(r), a.Abs(r), a.SignX(r), a.Sign(r), a.Expanded(r));
            int groups = (outFeatures + 3) / 4;
            if (threads <= 1 || groups < 8)
            {
                W8A8Groups(path, w, scales, bias, a, y, outFeatures, 0, groups);
                return;
            }
            int parts = Math.Min(threads, groups / 4);
            nint wp = (nint)w, sp = (nint)scales, bp = (nint)bias, yp = (nint)y;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                int from = (int)((long)groups * part / parts), to = (int)((long)groups * (part + 1) / parts);
                W8A8Groups(path, (byte*)wp, (float*)sp, (float*)bp, a, (float*)yp, outFeatures, from, to);
            });
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>Views of the per-row quantized activations inside one buffer (64-byte aligned sections).</summary>
    private readonly struct W8A8Rows
    {
        private readonly byte* _base;
        public readonly int Rows, N, Blocks;
        public readonly long Padded;
        public readonly float* Correction;

        public W8A8Rows(byte* buffer, int rows, int n, int blocks, long padded)
        {
            _base = buffer;
            Rows = rows; N = n; Blocks = blocks; Padded = padded;
            Correction = (float*)(buffer + rows * (4 * padded + 4L * blocks + 32L * blocks));
        }

        // Layout: [qx | abs | m' | m] bytes for all rows, then float block scales, then float expanded scales.
        public sbyte* Q(int r) => (sbyte*)(_base + r * Padded);
        public byte* Abs(int r) => _base + (Rows + r) * Padded;
        public byte* SignX(int r) => _base + (2L * Rows + r) * Padded;
        public byte* Sign(int r) => _base + (3L * Rows + r) * Padded;
        public float* S(int r) => (float*)(_base + 4L * Rows * Padded) + (long)r * Blocks;
        public float* Expanded(int r) => (float*)(_base + 4L * Rows * Padded + 4L * Rows * Blocks) + (long)r * Blocks * 8;
    }

    /// <summary>Quantizes one row per block (zero-padded to whole blocks) into <paramref name="qx"/> and
    /// <paramref name="sx"/>, plus the forms the SIMD paths read (|qx|, the sign masks m' and m, each block scale repeated
    /// 8 times); returns the AVX-VNNI offset correction <c>128 * sum_b sx_b * sum qx_b</c> over the whole blocks.</summary>
    internal static float QuantizeActivations(float* x, int n, sbyte* qx, float* sx, byte* abs, byte* signX, byte* sign, float* expanded)
    {
        int blocks = (n + W8A8Block - 1) / W8A8Block;
        double correction = 0;
        bool simd = CurrentW8A8Path != W8A8Path.Scalar && Avx2.IsSupported;
        for (int b = 0; b < blocks; b++)
        {
            int i0 = b * W8A8Block, len = Math.Min(W8A8Block, n - i0);
            float max = 0;
            if (simd && len == W8A8Block)
            {
                var m = Vector256.Max(Vector256.Max(Vector256.Abs(Avx.LoadVector256(x + i0)), Vector256.Abs(Avx.LoadVector256(x + i0 + 8))),
                    Vector256.Max(Vector256.Abs(Avx.LoadVector256(x + i0 + 16)), Vector256.Abs(Avx.LoadVector256(x + i0 + 24))));
                var m4 = Sse.Max(m.GetLower(), m.GetUpper());
                m4 = Sse.Max(m4, Sse.Shuffle(m4, m4, 0b_01_00_11_10));
                m4 = Sse.Max(m4, Sse.Shuffle(m4, m4, 0b_10_11_00_01));
                max = m4.ToScalar();
            }
            else
                for (int i = 0; i < len; i++) max = Math.Max(max, Math.Abs(x[i0 + i]));
            float scale = max / 127f;
            float inv = scale > 0 ? 1f / scale : 0f;
            int sum = 0;
            if (simd && len == W8A8Block)
            {
                // cvtps2dq rounds half to even (the default MXCSR mode), as MathF.Round(.., ToEven).
                var iv = Vector256.Create(inv);
                var lo = Vector256.Create(-127);
                var hi = Vector256.Create(127);
                var q0 = Avx2.Min(Avx2.Max(Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(x + i0), iv)), lo), hi);
                var q1 = Avx2.Min(Avx2.Max(Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(x + i0 + 8), iv)), lo), hi);
                var q2 = Avx2.Min(Avx2.Max(Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(x + i0 + 16), iv)), lo), hi);
                var q3 = Avx2.Min(Avx2.Max(Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(x + i0 + 24), iv)), lo), hi);
                sum = Vector256.Sum(q0 + q1 + q2 + q3);
                // Pack 32 int32 to 32 int8 in order: packs work per 128-bit lane, a final dword permute restores the order.
                var w01 = Avx2.PackSignedSaturate(q0, q1);
                var w23 = Avx2.PackSignedSaturate(q2, q3);
                var bytes = Avx2.PackSignedSaturate(w01, w23);
                bytes = Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte();
                bytes.Store(qx + i0);
            }
            else
                for (int i = 0; i < W8A8Block; i++)
                {
                    int q = i < len ? (int)Math.Clamp(MathF.Round(x[i0 + i] * inv, MidpointRounding.ToEven), -127f, 127f) : 0;
                    qx[i0 + i] = (sbyte)q;
                    sum += q;
                }
            for (int i = 0; i < W8A8Block; i++)
            {
                int q = qx[i0 + i];
                abs[i0 + i] = (byte)Math.Abs(q);
                byte m = q < 0 ? (byte)0xFF : (byte)0;
                sign[i0 + i] = m;
                signX[i0 + i] = (byte)(m ^ 0x80);
            }
            sx[b] = scale;
            for (int k = 0; k < 8; k++) expanded[b * 8 + k] = scale;
            if (len == W8A8Block) correction += 128.0 * scale * sum;
        }
        return (float)correction;
    }

    private static void W8A8Groups(W8A8Path path, byte* w, float* scales, float* bias, W8A8Rows a, float* y, int outFeatures, int from, int to)
    {
        int n = a.N, blocks = a.Blocks, whole = n / W8A8Block;
        Span<float> acc = stackalloc float[4];
        for (int g = from; g < to; g++)
        {
            int o0 = g * 4, count = Math.Min(4, outFeatures - o0);
            for (int r = 0; r < a.Rows; r++)
            {
                sbyte* q = a.Q(r);
                float* s = a.S(r);
                int done = 0;
                acc.Clear();
                if (path != W8A8Path.Scalar && count == 4 && whole > 0)
                {
                    switch (path)
                    {
                        case W8A8Path.AvxVnni:
                            W8A8Dot4Vnni(w + (long)o0 * n, n, q, s, whole, acc);
                            for (int k = 0; k < 4; k++) acc[k] -= a.Correction[r];
                            break;
                        case W8A8Path.Avx512BW: W8A8Dot4Avx512(w + (long)o0 * n, n, a.Abs(r), a.SignX(r), a.Sign(r), a.Expanded(r), whole, acc); break;
                        default: W8A8Dot4Avx2(w + (long)o0 * n, n, a.Abs(r), a.SignX(r), a.Sign(r), a.Expanded(r), 0, whole, acc); break;
                    }
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

    /// <summary>Blocks <paramref name="fromBlock"/> to <paramref name="whole"/> of four rows, 256-bit: the signed sums
    /// of <c>|qx|</c> x sign-adjusted weights, one block per instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void W8A8Dot4Avx2(byte* w0, long stride, byte* abs, byte* signX, byte* sign, float* expanded, int fromBlock, int whole, Span<float> result)
    {
        Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        var ones = Vector256.Create((short)1);
        for (int b = fromBlock; b < whole; b++)
        {
            int i = b * W8A8Block;
            byte* p = w0 + PrefetchDistance + i;
            Sse.Prefetch1(p); Sse.Prefetch1(p + stride); Sse.Prefetch1(p + 2 * stride); Sse.Prefetch1(p + 3 * stride);
            var ax = Avx.LoadVector256(abs + i);
            var mx = Avx.LoadVector256(signX + i);
            var m = Avx.LoadVector256(sign + i);
            var sv = Avx.LoadVector256(expanded + b * 8);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, Avx2.Subtract(Avx2.Xor(Avx.LoadVector256(w0 + i), mx), m).AsSByte()), ones)), sv, a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, Avx2.Subtract(Avx2.Xor(Avx.LoadVector256(w0 + stride + i), mx), m).AsSByte()), ones)), sv, a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, Avx2.Subtract(Avx2.Xor(Avx.LoadVector256(w0 + 2 * stride + i), mx), m).AsSByte()), ones)), sv, a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, Avx2.Subtract(Avx2.Xor(Avx.LoadVector256(w0 + 3 * stride + i), mx), m).AsSByte()), ones)), sv, a3);
        }
        result[0] += Vector256.Sum(a0); result[1] += Vector256.Sum(a1); result[2] += Vector256.Sum(a2); result[3] += Vector256.Sum(a3);
    }

    /// <summary>As <see cref="W8A8Dot4Avx2"/>, 512-bit: two blocks per instruction (int32 lanes 0-7 are the first
    /// block's, 8-15 the second's, matching the expanded scales), an odd last block through the 256-bit code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void W8A8Dot4Avx512(byte* w0, long stride, byte* abs, byte* signX, byte* sign, float* expanded, int whole, Span<float> result)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        var ones = Vector512.Create((short)1);
        int b = 0;
        for (; b + 2 <= whole; b += 2)
        {
            int i = b * W8A8Block;
            byte* p = w0 + PrefetchDistance + i;
            Sse.Prefetch1(p); Sse.Prefetch1(p + stride); Sse.Prefetch1(p + 2 * stride); Sse.Prefetch1(p + 3 * stride);
            var ax = Avx512BW.LoadVector512(abs + i);
            var mx = Avx512BW.LoadVector512(signX + i);
            var m = Avx512BW.LoadVector512(sign + i);
            var sv = Avx512F.LoadVector512(expanded + b * 8);
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, Avx512BW.Subtract(Avx512F.Xor(Avx512BW.LoadVector512(w0 + i), mx), m).AsSByte()), ones)), sv, a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, Avx512BW.Subtract(Avx512F.Xor(Avx512BW.LoadVector512(w0 + stride + i), mx), m).AsSByte()), ones)), sv, a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, Avx512BW.Subtract(Avx512F.Xor(Avx512BW.LoadVector512(w0 + 2 * stride + i), mx), m).AsSByte()), ones)), sv, a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(ax, Avx512BW.Subtract(Avx512F.Xor(Avx512BW.LoadVector512(w0 + 3 * stride + i), mx), m).AsSByte()), ones)), sv, a3);
        }
        result[0] = Vector512.Sum(a0); result[1] = Vector512.Sum(a1); result[2] = Vector512.Sum(a2); result[3] = Vector512.Sum(a3);
        if (b < whole) W8A8Dot4Avx2(w0, stride, abs, signX, sign, expanded, b, whole, result);
    }

#if NET9_0_OR_GREATER
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void W8A8Dot4Vnni(byte* w0, long stride, sbyte* q, float* s, int whole, Span<float> result)
    {
        Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < whole; b++)
        {
            int i = b * W8A8Block;
            byte* p = w0 + PrefetchDistance + i;
            Sse.Prefetch1(p); Sse.Prefetch1(p + stride); Sse.Prefetch1(p + 2 * stride); Sse.Prefetch1(p + 3 * stride);
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
    private static void W8A8Dot4Vnni(byte* w0, long stride, sbyte* q, float* s, int whole, Span<float> result) => throw new PlatformNotSupportedException();
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

    /// <summary>Measures the read bandwidth of one thread streaming <paramref name="bytes"/> bytes with the kernels' L2
    /// prefetch (GB/s; best of <paramref name="repeats"/>), the ceiling for weight streaming in a decode step.</summary>
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
                // The same L2 prefetch as the kernels, so the figure is the bandwidth they can reach.
                if (Sse.IsSupported) { Sse.Prefetch1(p + i + PrefetchDistance / 4); Sse.Prefetch1(p + i + 16 + PrefetchDistance / 4); }
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
