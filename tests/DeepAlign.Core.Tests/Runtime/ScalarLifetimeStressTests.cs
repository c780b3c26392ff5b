using System.Collections.Concurrent;
using System.Diagnostics;
using DeepAlign.Method;
using DeepAlign.Models.Common;
using DeepAlign.Testing;
using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Runtime;

/// <summary>
/// Regression test for the TorchSharp implicit-Scalar hazard (docs/troubleshooting.md): two threads run forward passes
/// (padding mask, KV cache), contrastive scoring steps and position statistics while a third thread forces full
/// garbage collections and finalizers in a loop. With an implicit Scalar on these paths, a collection can free the
/// native scalar while libtorch reads it (an exception, a crash, or wrong numbers); every iteration's numbers must equal
/// the single-threaded reference computed before the stress phase.
/// </summary>
public sealed class ScalarLifetimeStressTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StressDuration = TimeSpan.FromSeconds(5);
    private const int MethodRepeats = 20;

    private static readonly ContrastiveScoringOptions RampOptions = new()
    {
        Alpha = new LinearRampAlpha(0.5, 2.0, 4),
        PlausibilityBeta = 0.1,
    };

    private static readonly ContrastiveScoringOptions DrivenOptions = new()
    {
        Rule = ContrastiveRule.BaseFavoredOnly,
        Alpha = new IncompletenessDrivenAlpha(2.0),
        PlausibilityBeta = 0.05,
        Incompleteness = new IncompletenessOptions { Tau = 0.01, TopKBase = 8 },
    };

    [Fact]
    public void Inference_paths_give_reference_results_on_two_threads_under_constant_garbage_collection()
    {
        var pairs = new[]
        {
            (Aligned: TinyModelFactory.Create(Config("llama"), seed: 11), Base: TinyModelFactory.Create(Config("llama"), seed: 12)),
            (Aligned: TinyModelFactory.Create(Config("qwen2"), seed: 21), Base: TinyModelFactory.Create(Config("qwen2"), seed: 22)),
        };
        (float[][] Decoding, float[][] Method, (Tensor la, Tensor lb) LogProbs)[]? references = null;
        try
        {
            var refs = references = pairs.Select(p =>
            {
                var (decoding, la, lb) = DecodingWorkload(p.Aligned, p.Base);
                return (Decoding: decoding, Method: MethodWorkload(la, lb), LogProbs: (la, lb));
            }).ToArray();

            var errors = new ConcurrentQueue<string>();
            var iterations = new int[pairs.Length];
            var clock = Stopwatch.StartNew();
            using var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, pairs.Length).Select(t => new Thread(() =>
            {
                try
                {
                    var (la, lb) = refs[t].LogProbs;
                    while (!stop.IsCancellationRequested)
                    {
                        // One decoding workload, then the (cheaper, Scalar-heavier) per-position method math several times.
                        var decoding = DecodingWorkload(pairs[t].Aligned, pairs[t].Base);
                        decoding.La.Dispose();
                        decoding.Lb.Dispose();
                        string? mismatch = FirstMismatch(refs[t].Decoding, decoding.Outputs);
                        for (int r = 0; r < MethodRepeats && mismatch is null; r++)
                            mismatch = FirstMismatch(refs[t].Method, MethodWorkload(la, lb));
                        if (mismatch is not null) errors.Enqueue($"thread {t}, iteration {iterations[t]}: {mismatch}");
                        iterations[t]++;
                    }
                }
                catch (Exception e)
                {
                    errors.Enqueue($"thread {t}, iteration {iterations[t]}: {e.GetType().Name}: {e.Message}");
                }
            }) { IsBackground = true, Name = $"scalar-stress-{t}" }).ToList();
            int collections = 0;
            var collector = new Thread(() =>
            {
                while (clock.Elapsed < StressDuration && errors.IsEmpty)
                {
                    // Mostly gen0 collections: the temporary Scalars are young, and cheap collections make many more
                    // chances to finalize one mid-call (on the old code this failed within seconds); a full one now and then.
                    if (collections % 16 == 15)
                    {
                        GC.Collect();
                        GC.WaitForPendingFinalizers();
                    }
                    else GC.Collect(0);
                    collections++;
                }
                stop.Cancel();
            }) { IsBackground = true, Name = "scalar-stress-gc" };

            workers.ForEach(w => w.Start());
            collector.Start();
            collector.Join();
            workers.ForEach(w => w.Join(TimeSpan.FromSeconds(30)).Should().BeTrue("a worker must finish its iteration"));

            output.WriteLine($"iterations per thread: {string.Join(", ", iterations)}; forced collections: {collections}; errors: {errors.Count}");
            errors.Should().BeEmpty();
            iterations.Should().AllSatisfy(n => n.Should().BeGreaterThan(2, "each thread must have run under the collector"));
            collections.Should().BeGreaterThan(10);
        }
        finally
        {
            foreach (var (aligned, @base) in pairs) { aligned.Dispose(); @base.Dispose(); }
            foreach (var r in references ?? []) { r.LogProbs.la.Dispose(); r.LogProbs.lb.Dispose(); }
        }
    }

    private static DeepAlign.Configuration.CausalLMConfig Config(string family) => family == "llama"
        ? TinyModelFactory.LlamaConfig(vocabSize: 48, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64, initializerRange: 0.2)
        : TinyModelFactory.Qwen2Config(vocabSize: 48, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 4, intermediateSize: 64, initializerRange: 0.2);

    /// <summary>
    /// Cached greedy decoding with left padding (BuildMask with a past, positions from the mask), then a full padded
    /// forward of both models. Returns every number produced and the two models' log-probabilities <c>[12, V]</c>.
    /// </summary>
    private static (float[][] Outputs, Tensor La, Tensor Lb) DecodingWorkload(DecoderOnlyCausalLM aligned, DecoderOnlyCausalLM @base)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var outputs = new List<float[]>();
        var ids = tensor(new long[] { 0, 0, 5, 9, 13, 7, 3, 4, 17, 21, 8, 30 }, new long[] { 2, 6 }, ScalarType.Int64);
        var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, new long[] { 2, 6 }, ScalarType.Int64);
        using (var cache = aligned.CreateCache(2, 10))
        {
            var step = aligned.Forward(ids, mask, cache, lastPositionOnly: true);
            outputs.Add(Values(step));
            var m = mask;
            for (int k = 0; k < 2; k++)
            {
                var next = step.argmax(-1);
                m = cat(new[] { m, ones(2, 1, dtype: ScalarType.Int64) }, 1);
                step = aligned.Forward(next, m, cache, lastPositionOnly: true);
                outputs.Add(Values(step));
            }
        }
        var la = PositionStatistics.LogSoftmax(aligned.Forward(ids, mask).reshape(12, -1));
        var lb = PositionStatistics.LogSoftmax(@base.Forward(ids).reshape(12, -1));
        outputs.Add(Values(la));
        outputs.Add(Values(lb));
        return (outputs.ToArray(), la.MoveToOuterDisposeScope(), lb.MoveToOuterDisposeScope());
    }

    /// <summary>Contrastive scores under two schedules and the position statistics of one pair of log-probabilities.</summary>
    private static float[][] MethodWorkload(Tensor la, Tensor lb)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var outputs = new List<float[]>();
        var positions = tensor(new long[] { 1, 1, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6 }, ScalarType.Int64);
        var targets = tensor(new long[] { 0, 5, 9, 13, 7, 3, 4, 17, 21, 8, 30, 2 }, ScalarType.Int64);
        foreach (var options in new[] { RampOptions, DrivenOptions })
        {
            using var contrastive = ContrastiveScoring.Step(la, lb, positions, options);
            outputs.Add(Values(contrastive.Scores)); // -inf where implausible (compared bit for bit)
            outputs.Add(Values(contrastive.Alpha));
        }
        using var stats = PositionStatistics.Compute(la, lb, targets, new IncompletenessOptions { Tau = 0.01, TopKBase = 8, ReportTopItems = 3 });
        foreach (var t in new[] { stats.KlAlignedBase, stats.KlBaseAligned, stats.LogRatio!, stats.BaseFavoredToken!, stats.Set.Incompleteness, stats.TopItemIds, stats.TopItemProbBase })
            outputs.Add(Values(t));
        return outputs.ToArray();
    }

    private static float[] Values(Tensor t) => t.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();

    private static string? FirstMismatch(float[][] expected, float[][] actual)
    {
        if (expected.Length != actual.Length) return $"{actual.Length} outputs instead of {expected.Length}";
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i].Length != actual[i].Length) return $"output {i} has {actual[i].Length} values instead of {expected[i].Length}";
            for (int j = 0; j < expected[i].Length; j++)
                if (BitConverter.SingleToInt32Bits(expected[i][j]) != BitConverter.SingleToInt32Bits(actual[i][j]))
                    return $"output {i}[{j}] = {actual[i][j]:R}, reference {expected[i][j]:R}";
        }
        return null;
    }
}
