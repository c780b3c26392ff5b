using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace DeepAlign.Runtime;

/// <summary>Runs independent, long, CPU-bound work items on a few dedicated threads (not the thread pool).</summary>
internal static class WorkerThreads
{
    /// <summary>
    /// Runs <paramref name="body"/> for every index in [0, <paramref name="count"/>) on up to <paramref name="workers"/>
    /// threads, with libtorch's intra-op threads capped at max(1, cores / workers) meanwhile so the workers never
    /// oversubscribe the cores. The first failure cancels the token the other items get and is rethrown with its stack
    /// trace (a real failure before the cancellations it caused).
    /// </summary>
    /// <param name="count">Number of items.</param>
    /// <param name="workers">Threads to use (at least 1; one item at a time on the caller's thread when 1).</param>
    /// <param name="name">Thread name part, e.g. <c>evaluation</c>.</param>
    /// <param name="body">The work of item i; it gets the token to observe (cancelled when another item failed).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public static void Run(int count, int workers, string name, Action<int, CancellationToken> body, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        workers = Math.Min(workers, count);
        if (workers <= 1)
        {
            for (int i = 0; i < count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                body(i, cancellationToken);
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
                    body(i, failed.Token);
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
