using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using DeepAlign.Models.Quantization;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary><c>kernels [--in 768] [--out 2048] [--rows 1] [--layers 48] [--four-rows 1] [--prefetch 1] [--huge 0] [--x32 1] [--wide BYTES]</c>: GB/s
/// of weights the decoding kernels stream for one [rows, in] x [out, in]^T product per weight format, over enough
/// distinct matrices (one buffer, back to back, as <see cref="QuantizationOptions.PackWeights"/> lays them out) to
/// defeat the caches (<c>--four-rows 1</c>: batch 1 through the four-row blocks instead of the one-row stream;
/// <c>--prefetch 1</c> / <c>0</c>: software prefetch in the stream for every format / none; default int8 only; <c>--huge 0</c>: no huge-page advice for the buffer; <c>--x32 1</c>: the bfloat16 stream reads float32 input; <c>--wide</c>: batch-1 inputs wider than this many bytes
/// in four-row blocks, default 24576).</summary>
internal static unsafe class KernelBenchmark
{
    public const string Help = "weight GB/s of the decoding kernels per weight format (fp32, bf16, int8)";

    public static int Run(string[] args)
    {
        int inF = Arg(args, "--in", 768), outF = Arg(args, "--out", 2048), rows = Arg(args, "--rows", 1), mats = Arg(args, "--layers", 48);
        LinearKernels.ForceFourRows = Arg(args, "--four-rows", 0) != 0;
        int prefetch = Arg(args, "--prefetch", -1);
        LinearKernels.StreamPrefetch = prefetch < 0 ? null : prefetch != 0;
        LinearKernels.StreamBFloat16Input = Arg(args, "--x32", 0) == 0;
        LinearKernels.WideInputBytes = Arg(args, "--wide", (int)LinearKernels.DefaultWideInputBytes);
        bool huge = Arg(args, "--huge", 1) != 0;
        Console.WriteLine($"kernels: {LinearKernels.InstructionSet}; read bandwidth {LinearKernels.MeasureReadBandwidth():F1} GB/s");
        foreach (var kind in new[] { KernelWeights.Float32, KernelWeights.BFloat16, KernelWeights.Int8, KernelWeights.Int8W8A8 })
        {
            int size = kind == KernelWeights.Float32 ? 4 : kind == KernelWeights.BFloat16 ? 2 : 1;
            long bytes = (long)inF * outF * size;
            var w = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes * mats), 2 << 20);
            if (huge) WeightArena.AdviseHugePages(w, bytes * mats); // before the first write, as the arena does
            new Span<byte>(w, (int)Math.Min(int.MaxValue, bytes * mats)).Fill(1);
            var x = (float*)NativeMemory.AlignedAlloc((nuint)(rows * inF * 4), 64);
            var y = (float*)NativeMemory.AlignedAlloc((nuint)(rows * outF * 4), 64);
            var s = (float*)NativeMemory.AlignedAlloc((nuint)(outF * 4), 64);
            for (int i = 0; i < rows * inF; i++) x[i] = 0.5f;
            for (int i = 0; i < outF; i++) s[i] = 1f;
            double best = double.MaxValue;
            for (int r = 0; r < 5; r++)
            {
                var sw = Stopwatch.StartNew();
                for (int m = 0; m < mats; m++) LinearKernels.Run(kind, w + m * bytes, kind is KernelWeights.Int8 or KernelWeights.Int8W8A8 ? s : null, null, x, y, rows, inF, outF, 1);
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{kind}: {bytes * mats / best / 1e9:F2} GB/s of weights, {best / mats * 1e6:F0} us per matrix"));
            NativeMemory.AlignedFree(w); NativeMemory.AlignedFree(x); NativeMemory.AlignedFree(y); NativeMemory.AlignedFree(s);
        }
        return 0;
    }
}
