using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Runtime;

/// <summary>
/// The documented default weight dtype for inference (docs/performance.md, "Decoding precision"): bfloat16 on CPUs
/// with native bfloat16 arithmetic (x86 AVX512_BF16 or AMX-BF16, Arm BF16), where libtorch's bfloat16 matmuls are
/// fast and decoding streams half the bytes of float32; float32 on other CPUs, where bfloat16 matmuls are emulated.
/// On CUDA the checkpoint's own <c>torch_dtype</c> is used (null here).
/// </summary>
public static class InferencePrecision
{
    private static readonly Lazy<bool> NativeBf16 = new(DetectNativeBFloat16);

    /// <summary>Whether this CPU has native bfloat16 arithmetic.</summary>
    public static bool CpuHasNativeBFloat16 => NativeBf16.Value;

    /// <summary>The default inference dtype for <paramref name="device"/>: bfloat16 or float32 on the CPU (see the class
    /// remarks), null (the checkpoint's dtype) elsewhere.</summary>
    /// <param name="device">The device the model will run on.</param>
    public static ScalarType? DefaultFor(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.type != DeviceType.CPU) return null;
        return CpuHasNativeBFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
    }

    private static bool DetectNativeBFloat16()
    {
        if (X86Base.IsSupported)
        {
            // CPUID leaf 7, sub-leaf 1, EAX bit 5: AVX512_BF16; leaf 7 sub-leaf 0, EDX bit 22: AMX-BF16.
            var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
            if (maxLeaf < 7) return false;
            var (_, _, _, edx0) = X86Base.CpuId(7, 0);
            var (eax1, _, _, _) = X86Base.CpuId(7, 1);
            return (eax1 & (1 << 5)) != 0 || (edx0 & (1 << 22)) != 0;
        }
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("Features", StringComparison.Ordinal) || line.StartsWith("flags", StringComparison.Ordinal))
                        return line.Split(' ', '\t').Contains("bf16");
        }
        catch (IOException) { }
        return false;
    }
}
