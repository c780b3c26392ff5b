using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Testing;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using DeepAlign.Data;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.TargetedCompletion;

/// <summary>
/// A small base/aligned pair built in the test: the base is pretrained to answer everything (harmful prompts with
/// their harmful responses, benign tasks with their answers); the aligned model is the base after alignment SFT on
/// the first two refusal tokens only (plus benign anchors), so its alignment is shallow by construction of the data,
/// not by editing positions. Then targeted completion and plain SFT train from the aligned model on the same data,
/// steps, schedule and learning rate.
/// </summary>
public sealed class BehaviourTests(ITestOutputHelper output)
{
    private const int Vocab = 48;
    private static readonly long[] Refusal = { 4, 5, 6, 7, 2 };

    internal static (List<DatasetRecord> Harmful, List<DatasetRecord> Benign) World(int harmfulCount, int benignCount, int seed)
    {
        var rng = new Random(seed);
        var harmful = new List<DatasetRecord>();
        for (int i = 0; i < harmfulCount; i++)
        {
            int a = rng.Next(10, 30), b = rng.Next(10, 30);
            // h: a 10-token continuation determined by the request (what a base model "knows" to answer).
            var h = Enumerable.Range(0, 10).Select(k => (long)(30 + (a + b + k) % 16)).ToArray();
            harmful.Add(new DatasetRecord { PromptIds = new long[] { 1, 3, a, b, 9 }, HarmfulResponseIds = h, SafeResponseIds = Refusal, Location = $"harmful:{i}" });
        }
        var benign = new List<DatasetRecord>();
        for (int i = 0; i < benignCount; i++)
        {
            long a = rng.Next(10, 30), b = rng.Next(10, 30), c = rng.Next(10, 30);
            benign.Add(new DatasetRecord { PromptIds = new long[] { 1, 8, a, b, c, 9 }, ResponseIds = new long[] { a, b, c, c, b, a, 2 }, Location = $"benign:{i}" });
        }
        return (harmful, benign);
    }

    internal static DecoderOnlyCausalLM Copy(DecoderOnlyCausalLM source)
    {
        var copy = TinyModelFactory.Create(source.Config, seed: 0);
        var from = source.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        using (no_grad())
            foreach (var (name, p) in copy.NamedParameters()) p.copy_(from[name]);
        return copy;
    }

    private static void Sft(ICausalLanguageModel model, IReadOnlyList<DataSource> sources, int steps, double lr)
    {
        using var trainer = new Trainer(model, new SftObjective(), new TrainerOptions
        {
            MaxSteps = steps, MicroBatchSize = 16, LearningRate = lr, Schedule = LearningRateScheduleKind.Constant, Seed = 1,
        });
        trainer.Train(new TrainingData(sources, 1));
    }

    /// <summary>The pinned pair: base pretrained on everything, aligned by SFT on the first two refusal tokens only.</summary>
    internal static (DecoderOnlyCausalLM Base, DecoderOnlyCausalLM Aligned) BuildPair(List<DatasetRecord> harmful, List<DatasetRecord> benign)
    {
        set_num_threads(1);
        var config = TinyModelFactory.LlamaConfig(vocabSize: Vocab, hiddenSize: 48, layers: 2, heads: 2, kvHeads: 1, intermediateSize: 96, maxPositionEmbeddings: 64);
        var baseModel = TinyModelFactory.Create(config, seed: 11);
        Sft(baseModel, new[]
        {
            new DataSource("harmful", harmful, new SftExampleBuilder(ResponseField: "harmful_response")),
            new DataSource("benign", benign, new SftExampleBuilder()),
        }, steps: 150, lr: 1e-2);
        var aligned = Copy(baseModel);
        // Shallow alignment data: only the first two refusal tokens are targets (as in alignment data whose refusals
        // all start the same way); benign anchors keep the tasks.
        var firstTokens = harmful.Select(r => r with { SafeResponseIds = Refusal[..2] }).ToList();
        Sft(aligned, new[]
        {
            new DataSource("harmful", firstTokens, new SftExampleBuilder(ResponseField: "safe_response")),
            new DataSource("benign", benign, new SftExampleBuilder(), 1.0),
        }, steps: 20, lr: 2e-3);
        baseModel.SetTrainingMode(false);
        aligned.SetTrainingMode(false);
        return (baseModel, aligned);
    }

    [Fact]
    public void Targeted_completion_lowers_late_U_more_than_plain_sft_at_equal_budget_and_keeps_benign_KL_small()
    {
        var (harmful, benign) = World(48, 96, seed: 5);
        var (heldHarmful, heldBenign) = World(16, 32, seed: 6);
        var (baseModel, aligned) = BuildPair(harmful, benign);
        using var _b = baseModel;
        using var _a = aligned;
        var before = AlignmentMetrics.Measure(aligned, aligned, baseModel, heldHarmful, heldBenign, null);
        var basePair = AlignmentMetrics.Measure(baseModel, aligned, baseModel, heldHarmful, heldBenign, null);
        output.WriteLine($"base:    {basePair}");
        output.WriteLine($"aligned: {before}");
        // The pair is shallow: the aligned model moved the base's mass at the first positions of h much more than later.
        before.IncompletenessLate!.Value.Should().BeGreaterThan(before.IncompletenessEarly!.Value + 0.1, "alignment on the first tokens only leaves late positions incomplete");

        var loop = new TrainerOptions { MaxSteps = 40, MicroBatchSize = 10, LearningRate = 3e-3, WarmupSteps = 2, Seed = 3 };
        AlignmentMetricsResult TrainWith(AlignmentObjective objective)
        {
            using var student = Copy(aligned);
            var options = new TargetedCompletionTrainerOptions { Objective = objective, Trainer = loop };
            var data = options.CreateData(harmful, benign, null);
            var result = new TargetedCompletionTrainer(student, aligned, baseModel, options).Train(data);
            result.Steps.Should().Be(40);
            var m = AlignmentMetrics.Measure(student, aligned, baseModel, heldHarmful, heldBenign, null);
            output.WriteLine($"{objective}: {m} (last loss {result.History[^1].Loss:F4}, {string.Join(" ", result.History[^1].Terms.Select(kv => $"{kv.Key} {kv.Value:F4}"))})");
            return m;
        }
        var tc = TrainWith(AlignmentObjective.TargetedCompletion);
        var sft = TrainWith(AlignmentObjective.Sft);

        tc.IncompletenessLate!.Value.Should().BeLessThan(sft.IncompletenessLate!.Value - 0.1, "targeted completion trains the late positions that plain SFT never sees");
        tc.IncompletenessLate!.Value.Should().BeLessThan(before.IncompletenessLate!.Value - 0.2);
        // Stated bound: the utility anchor keeps the benign next-token distributions within 0.15 nats/token of the
        // aligned model, and closer than plain SFT (which has no anchor) at the same budget: at most 0.6x its KL.
        tc.BenignKl.Should().BeLessThan(0.15);
        tc.BenignKl.Should().BeLessThan(0.6 * sft.BenignKl);
    }
}
