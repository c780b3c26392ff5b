using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace DeepAlign.Runtime;

/// <summary>
/// libtorch thread defaults that never oversubscribe the CPU: intra-op threads = max(1, cores / workers), where workers
/// is the number of threads that run models at the same time (e.g. <c>SafetyEvaluator.EvaluateAll</c>'s workers), and
/// OpenMP threads that sleep instead of spinning while they wait. See docs/performance.md (section "Threads").
/// </summary>
/// <remarks>
/// Call <see cref="Configure"/> once at application start, before anything else touches TorchSharp: the OpenMP wait
/// policy is read when libtorch is loaded, so it can only be applied before that (<see cref="PassiveWaitsApplied"/>
/// tells whether it was). The intra-op thread count can be changed at any time and is process-wide.
/// </remarks>
public static class TorchThreads
{
    private const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    private static readonly object Lock = new();

    /// <summary>Whether <see cref="Configure"/> (or <see cref="PreferPassiveWaits"/>) set <c>OMP_WAIT_POLICY=PASSIVE</c>
    /// before libtorch was loaded in this process.</summary>
    public static bool PassiveWaitsApplied { get; private set; }

    /// <summary>The thread count <see cref="Configure"/> last set, or null when it was never called.</summary>
    public static int? ConfiguredIntraOpThreads { get; private set; }

    /// <summary>The CPUs this process may use (<see cref="Environment.ProcessorCount"/>: honours affinity masks and
    /// container CPU limits).</summary>
    public static int AvailableCores => Environment.ProcessorCount;

    /// <summary>The default libtorch intra-op thread count: max(1, <paramref name="cores"/> / <paramref name="workers"/>).</summary>
    /// <param name="workers">Threads that run models at the same time (at least 1).</param>
    /// <param name="cores">CPUs available; null for <see cref="AvailableCores"/>.</param>
    /// <returns>The thread count, so that workers x threads never exceeds the cores (unless there are more workers than cores).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="workers"/> or <paramref name="cores"/> is below 1.</exception>
    public static int DefaultIntraOpThreads(int workers = 1, int? cores = null)
    {
        if (workers < 1) throw new ArgumentOutOfRangeException(nameof(workers), workers, "At least one worker is needed.");
        int available = cores ?? AvailableCores;
        if (available < 1) throw new ArgumentOutOfRangeException(nameof(cores), available, "At least one core is needed.");
        return Math.Max(1, available / workers);
    }

    /// <summary>
    /// Sets libtorch's intra-op threads to <paramref name="intraOpThreads"/> (default:
    /// <see cref="DefaultIntraOpThreads"/> for <paramref name="workers"/>) and, when libtorch is not loaded yet and the
    /// variable is unset, <c>OMP_WAIT_POLICY=PASSIVE</c> (on a loaded machine spinning OpenMP threads made a 2-thread
    /// decode about 2x slower than 1 thread; docs/performance.md).
    /// </summary>
    /// <param name="workers">Threads that will run models at the same time (at least 1).</param>
    /// <param name="intraOpThreads">An explicit count (at least 1), or null for the default.</param>
    /// <returns>The intra-op thread count now in effect.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A count below 1.</exception>
    public static int Configure(int workers = 1, int? intraOpThreads = null)
    {
        if (intraOpThreads is < 1) throw new ArgumentOutOfRangeException(nameof(intraOpThreads), intraOpThreads, "At least one thread is needed.");
        int threads = intraOpThreads ?? DefaultIntraOpThreads(workers);
        lock (Lock)
        {
            PreferPassiveWaits();
            SetTorchThreads(threads);
            ConfiguredIntraOpThreads = threads;
        }
        return threads;
    }

    /// <summary>
    /// Sets <c>OMP_WAIT_POLICY=PASSIVE</c> in the native process environment when it is unset and libtorch's OpenMP
    /// runtime is not loaded yet (Linux and macOS; elsewhere nothing is done).
    /// </summary>
    /// <returns>True when the policy is now passive for the OpenMP runtime libtorch will load.</returns>
    public static bool PreferPassiveWaits()
    {
        lock (Lock)
        {
            if (PassiveWaitsApplied) return true;
            if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())) return false;
            var current = Environment.GetEnvironmentVariable(WaitPolicyVariable);
            if (current is not null)
                return PassiveWaitsApplied = current.Equals("PASSIVE", StringComparison.OrdinalIgnoreCase) && !OpenMpLoaded();
            if (OpenMpLoaded()) return false;
            if (setenv(WaitPolicyVariable, "PASSIVE", 0) != 0) return false;
            Environment.SetEnvironmentVariable(WaitPolicyVariable, "PASSIVE"); // keep the managed view in step
            return PassiveWaitsApplied = true;
        }
    }

    /// <summary>
    /// Caps libtorch's intra-op threads at <see cref="DefaultIntraOpThreads"/> for <paramref name="workers"/> until the
    /// returned scope is disposed (then the previous count is restored). Used by code that runs models on several
    /// threads at once so the workers never oversubscribe the cores.
    /// </summary>
    /// <param name="workers">Threads about to run models at the same time.</param>
    /// <returns>A scope that restores the previous thread count.</returns>
    public static IDisposable CapForWorkers(int workers)
    {
        int cap = DefaultIntraOpThreads(workers);
        int previous = GetTorchThreads();
        if (previous > cap) SetTorchThreads(cap);
        return new Restore(previous, previous > cap);
    }

    // libtorch is touched only in these methods so the wait policy can be set before TorchSharp's static
    // initialisation loads the native libraries.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void SetTorchThreads(int threads) => torch.set_num_threads(threads);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int GetTorchThreads() => torch.get_num_threads();

    private static bool OpenMpLoaded()
    {
        try
        {
            // Without /proc (macOS) loaded libraries are not visible: assume libtorch is loaded once TorchSharp's assembly is.
            if (!File.Exists("/proc/self/maps")) return AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "TorchSharp");
            foreach (var line in File.ReadLines("/proc/self/maps"))
                if (line.Contains("libgomp", StringComparison.Ordinal) || line.Contains("libiomp", StringComparison.Ordinal)
                    || line.Contains("libtorch_cpu", StringComparison.Ordinal))
                    return true;
            return false;
        }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return true; }
    }

    [DllImport("libc", EntryPoint = "setenv", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int setenv(string name, string value, int overwrite);

    private sealed class Restore(int previous, bool changed) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            if (changed) SetTorchThreads(previous);
        }
    }
}
