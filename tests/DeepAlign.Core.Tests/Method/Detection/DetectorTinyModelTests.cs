using DeepAlign.Method;
using DeepAlign.Method.Detection;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>Profiles of tiny random Llama models: batching/left padding, and a pair made by a few fine-tuning steps.</summary>
public class DetectorTinyModelTests(ITestOutputHelper output)
{
    private static ProfileInput RandomInput(Random rng, int promptLength, int responseLength, int vocab) =>
        new(Enumerable.Range(0, promptLength).Select(_ => (long)rng.Next(3, vocab)).ToArray(),
            Enumerable.Range(0, responseLength).Select(_ => (long)rng.Next(3, vocab)).ToArray());

    [Fact]
    public void Batch_results_equal_one_at_a_time_results_with_left_padding()
    {
        var config = TinyModelFactory.LlamaConfig(vocabSize: 96, initializerRange: 0.2);
        using var b = TinyModelFactory.Create(config, seed: 11);
        using var a = TinyModelFactory.Create(config, seed: 12);
        var rng = new Random(5);
        var inputs = new[] { (3, 6), (9, 2), (1, 9), (5, 4) }.Select(x => RandomInput(rng, x.Item1, x.Item2, 96)).ToList();
        var options = new ProfileOptions { TopKBase = 10 };
        var detector = new BaseFavoredTokenDetector(b, a, options: options);
        var batched = detector.ProfileBatch(inputs);
        for (int i = 0; i < inputs.Count; i++)
        {
            var single = detector.ProfileBatch([inputs[i]])[0];
            batched[i].Positions.Should().HaveCount(inputs[i].ResponseIds.Count);
            for (int j = 0; j < single.Positions.Count; j++)
            {
                var s = single.Positions[j];
                var x = batched[i].Positions[j];
                x.TokenId.Should().Be(s.TokenId);
                x.KlAlignedBase.Should().BeApproximately(s.KlAlignedBase, 1e-4);
                x.KlBaseAligned.Should().BeApproximately(s.KlBaseAligned, 1e-4);
                x.LogRatio.Should().BeApproximately(s.LogRatio, 1e-4);
                x.Incompleteness.Should().BeApproximately(s.Incompleteness, 1e-4);
                x.MassBase.Should().BeApproximately(s.MassBase, 1e-4);
                x.MassAligned.Should().BeApproximately(s.MassAligned, 1e-4);
                if (Math.Abs(s.LogRatio) > 1e-3) x.BaseFavored.Should().Be(s.BaseFavored);
            }
        }
        // Independent reference for one position: the full-sequence forward of each model, log_softmax, PositionStatistics.
        var input = inputs[2];
        var ids = input.PromptIds.Concat(input.ResponseIds).ToArray();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var t = tensor(ids, [1, ids.Length]);
        var la = PositionStatistics.LogSoftmax(a.Forward(t)[0]);
        var lb = PositionStatistics.LogSoftmax(b.Forward(t)[0]);
        int p = input.PromptIds.Count;
        for (int j = 1; j <= input.ResponseIds.Count; j++)
        {
            double kl = PositionStatistics.KlDivergence(la[p + j - 2], lb[p + j - 2]).item<float>();
            batched[2].Positions[j - 1].KlAlignedBase.Should().BeApproximately(kl, 1e-4);
        }
    }

    /// <summary>A prompt of random words ending with the "assistant header" 2, and a response that counts up from a
    /// random start (tokens 5..vocab-1, wrapping): the first token is unpredictable, every later one is determined.</summary>
    private static ProfileInput CountingInput(Random rng, int vocab, int responseLength)
    {
        int span = vocab - 5;
        long[] prompt = [.. Enumerable.Range(0, 4).Select(_ => (long)rng.Next(5, vocab)), 2];
        int start = rng.Next(span);
        return new ProfileInput(prompt, Enumerable.Range(0, responseLength).Select(k => (long)(5 + (start + k) % span)).ToArray());
    }

    /// <summary>Plain AdamW (or SGD) steps on the cross-entropy of the first <paramref name="targets"/> response tokens (all
    /// sequences share one prompt and response length).</summary>
    private static (double First, double Last) Train(DeepAlign.Models.ICausalLanguageModel model, Func<int, IReadOnlyList<ProfileInput>> batch, int targets, int steps, double lr, bool sgd = false, double stopBelow = 0)
    {
        optim.Optimizer optimizer = sgd
            ? optim.SGD(model.NamedParameters().Select(p => p.Parameter), lr)
            : optim.AdamW(model.NamedParameters().Select(p => p.Parameter), lr: lr);
        double first = 0, last = 0;
        model.SetTrainingMode(true);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var data = batch(step);
            int p = data[0].PromptIds.Count, length = p + targets;
            var ids = data.SelectMany(d => d.PromptIds.Concat(d.ResponseIds.Take(targets))).ToArray();
            optimizer.zero_grad();
            var x = tensor(ids, [data.Count, length]);
            var logits = model.Forward(x.narrow(1, 0, length - 1));
            var lp = PositionStatistics.LogSoftmax(logits.narrow(1, p - 1, targets).reshape(-1, logits.shape[^1]));
            var loss = -PositionStatistics.TokenLogProbs(lp, x.narrow(1, p, targets).reshape(-1)).mean();
            loss.backward();
            optimizer.step();
            last = loss.item<float>();
            if (step == 0) first = last;
            if (last < stopBelow) break;
        }
        model.SetTrainingMode(false);
        return (first, last);
    }

    [Fact]
    public void Fine_tuning_only_the_first_response_tokens_gives_high_early_kl_and_u_near_one_later()
    {
        const int vocab = 64;
        var config = TinyModelFactory.LlamaConfig(vocabSize: vocab, hiddenSize: 64, layers: 2);
        using var b = TinyModelFactory.Create(config, seed: 3);
        using var a = TinyModelFactory.Create(config, seed: 3);
        // 1. "Pretraining": the base learns to continue counting (a strong in-context prediction at every later position).
        var rng = new Random(9);
        var pre = Train(b, _ => Enumerable.Range(0, 16).Select(_ => CountingInput(rng, vocab, 8)).ToList(), 8, steps: 80, lr: 2e-2);
        output.WriteLine($"pretraining loss {pre.First:F3} -> {pre.Last:F3}");
        using (no_grad())
        {
            var source = b.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
            foreach (var (name, p) in a.NamedParameters()) p.copy_(source[name]); // the aligned model starts as a copy
        }
        // 2. "Shallow alignment": the copy is trained to start every response with the refusal tokens [3, 4]; the loss
        // covers the first two response positions only. Plain SGD moves each weight in proportion to its gradient; Adam's
        // per-weight normalisation would move every weight of this tiny model by ~lr per step and spread the change to
        // all positions (measured: KL ~0.2 everywhere), which is not what fine-tuning on a few positions does at scale.
        var refusals = Enumerable.Range(0, 16).Select(_ => CountingInput(rng, vocab, 2) with { ResponseIds = [3, 4] }).ToList();
        var ft = Train(a, _ => refusals, 2, steps: 40, lr: 0.1, sgd: true, stopBelow: 1.0);
        output.WriteLine($"fine-tuning loss {ft.First:F3} -> {ft.Last:F3}");
        ft.Last.Should().BeLessThan(ft.First / 4);

        // 3. Profile the (harmful) counting responses by teacher forcing.
        var data = Enumerable.Range(0, 16).Select(_ => CountingInput(rng, vocab, 20)).ToList();
        var detector = new BaseFavoredTokenDetector(b, a);
        var agg = new ProfileAggregator();
        foreach (var s in detector.Profile(data)) agg.Add(s);
        var r = agg.Result();
        foreach (var row in r.ByBucket)
            output.WriteLine($"bucket {row.Label}: n {row.N} KL {row.Kl.Mean:F4} KLrev {row.KlReverse.Mean:F4} U {row.U.Mean:F4} bf {row.BaseFavoredRate.Mean:F3}");
        var early = r.ByBucket[0];
        var later = r.ByBucket.Single(x => x.Label == "11-20");
        early.Kl.Mean.Should().BeGreaterThan(1.0);
        early.Kl.Mean.Should().BeGreaterThan(10 * later.Kl.Mean);
        early.U.Mean.Should().BeLessThan(0.5);
        later.U.Mean.Should().BeGreaterThan(0.9);
    }
}
