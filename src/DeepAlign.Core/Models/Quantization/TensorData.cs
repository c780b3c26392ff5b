using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Models.Quantization;

/// <summary>The address of a CPU tensor's first element, through LibTorchSharp's own <c>THSTensor_data</c> export (the
/// library TorchSharp has already loaded), for the kernels in <see cref="LinearKernels"/>.</summary>
internal static unsafe class TensorData
{
    private static readonly delegate* unmanaged<IntPtr, IntPtr> DataFunction = Resolve();

    /// <summary>Whether the kernels can reach tensor memory in this process.</summary>
    public static bool Available => DataFunction != null;

    public static void* Pointer(Tensor t)
    {
        if (DataFunction == null) throw new InvalidOperationException("THSTensor_data is not reachable in this process.");
        var p = DataFunction(t.Handle);
        if (p == IntPtr.Zero) throw new InvalidOperationException("libtorch returned no data pointer for the tensor.");
        return (void*)p;
    }

    /// <summary><see cref="Pointer"/> as a number (for callers without unsafe code, e.g. layout checks in tests).</summary>
    public static long Address(Tensor t) => (long)Pointer(t);

    private static delegate* unmanaged<IntPtr, IntPtr> Resolve()
    {
        try
        {
            _ = torch.get_num_threads(); // makes sure TorchSharp has loaded its native libraries
            foreach (var handle in Candidates())
                if (handle != IntPtr.Zero && NativeLibrary.TryGetExport(handle, "THSTensor_data", out var f))
                    return (delegate* unmanaged<IntPtr, IntPtr>)f;
        }
        catch (DllNotFoundException) { }
        catch (BadImageFormatException) { }
        return null;
    }

    private static IEnumerable<IntPtr> Candidates()
    {
        if (NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out var h)) yield return h;
        foreach (var name in new[] { "libLibTorchSharp.so", "libLibTorchSharp.dylib", "LibTorchSharp.dll" })
            if (NativeLibrary.TryLoad(name, out h)) yield return h;
        if (File.Exists("/proc/self/maps"))
        {
            string? path = null;
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int i = line.IndexOf('/');
                if (i >= 0 && line.EndsWith("libLibTorchSharp.so", StringComparison.Ordinal)) { path = line[i..]; break; }
            }
            if (path is not null && NativeLibrary.TryLoad(path, out h)) yield return h;
        }
    }
}
