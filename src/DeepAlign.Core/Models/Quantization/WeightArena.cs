using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace DeepAlign.Models.Quantization;

/// <summary>
/// One flat CPU buffer that holds every weight a decoding step streams, in the order the step reads them (layer by
/// layer q, k, v, o, gate, up, down, then the head), so a batch-1 step is one sequential read of one memory region
/// (docs/performance.md, "Round 4"). On Linux the buffer is advised <c>MADV_HUGEPAGE</c> before any of it is written,
/// so the kernel backs it with 2 MiB pages where transparent huge pages are enabled (<c>always</c> or <c>madvise</c>):
/// fewer TLB misses and page-crossing prefetch stalls per step. Elsewhere, or with THP off, it is still one contiguous
/// region.
/// </summary>
internal static unsafe class WeightArena
{
    /// <summary>Every weight starts on a cache line.</summary>
    public const long AlignmentBytes = 64;

    private const long HugePageBytes = 2L << 20;
    private const int MadvHugePage = 14;

    /// <summary>The number of elements that <paramref name="elements"/> occupy once padded to <see cref="AlignmentBytes"/>.</summary>
    public static long Padded(long elements, long elementSize)
    {
        long bytes = elements * elementSize;
        long padded = (bytes + AlignmentBytes - 1) / AlignmentBytes * AlignmentBytes;
        return padded / elementSize;
    }

    /// <summary>An uninitialised 1-D CPU tensor of <paramref name="elements"/> values, advised for huge pages before
    /// its first write. Returns null when the buffer cannot be allocated (the caller keeps the weights where they are).</summary>
    public static Tensor? TryAllocate(long elements, ScalarType dtype)
    {
        Tensor arena;
        try
        {
            // Large allocations come from fresh anonymous mappings (glibc mmaps them), untouched until written.
            arena = empty(elements, dtype, CPU);
        }
        catch (Exception e) when (e is OutOfMemoryException or ExternalException or InvalidOperationException)
        {
            return null;
        }
        AdviseHugePages(TensorData.Pointer(arena), elements * arena.ElementSize);
        return arena;
    }

    /// <summary>Advises the 2 MiB-aligned interior of <c>[start, start + bytes)</c> <c>MADV_HUGEPAGE</c> (Linux only;
    /// a refusal is ignored: huge pages are a speed hint, not a requirement).</summary>
    internal static bool AdviseHugePages(void* start, long bytes)
    {
        if (!OperatingSystem.IsLinux() || bytes < HugePageBytes) return false;
        long from = ((long)start + HugePageBytes - 1) & ~(HugePageBytes - 1);
        long to = ((long)start + bytes) & ~(HugePageBytes - 1);
        if (to <= from) return false;
        try
        {
            return madvise((void*)from, (nuint)(to - from), MadvHugePage) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int madvise(void* address, nuint length, int advice);
}
