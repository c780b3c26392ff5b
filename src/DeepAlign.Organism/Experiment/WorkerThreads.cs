using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using DeepAlign.Runtime;

namespace DeepAlign.Organism.Experiment;

/// <summary>Runs independent, long, CPU-bound work items on a few dedicated threads (not the thread pool).</summary>
internal static class WorkerThreads
{
    /// <summary>
    /// Runs <paramref name="body"/> for every index in [0, <paramref name="count"/>) on up to <paramref name="workers"/>
    /// threads, with libtorch's intra-op threads capped at max(1, cores / workers) meanwhile so the workers never
    /// oversubscribe the cores. The first failure cancels the remaining items and is rethrown with its stack trace.
    /// </summary>
    public static void Run(int count, int workers, string name, Action<int> body, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        workers = Math.Min(workers, count);
        if (workers <= 1)
        {
            for (int i = 0; i < count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                body(i);
            }
            return;
        }
        using var cap = TorchThreads.CapForWorkers(workers);
        int next = -1;
        var errors = new ConcurrentQueue<Exception>();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var threads = Enumerable.Range(0, workers).Select(w => new Thread(() =>
        {
            try
            {
                for (int i = Interlocked.Increment(ref next); i < count && !failed.IsCancellationRequested; i = Interlocked.Increment(ref next))
                    body(i);
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
                failed.Cancel();
            }
        }) { IsBackground = true, Name = $"DeepAlign {name} worker {w}" }).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        cancellationToken.ThrowIfCancellationRequested();
        var first = errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors.FirstOrDefault();
        if (first is not null) ExceptionDispatchInfo.Capture(first).Throw();
    }
}
