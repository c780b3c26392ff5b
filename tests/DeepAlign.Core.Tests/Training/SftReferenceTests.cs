using System.Text.Json;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using DeepAlign.Checkpoints;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

/// <summary>SFT loss, gradients and a full training run against tests/scripts/training/sft_reference.py (PyTorch 1.13).</summary>
public class SftReferenceTests
{
    internal static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "training", "sft");

    internal sealed record Reference(JsonElement Config, double[] Losses, double[] LearningRates, double[] GradNorms);

    internal static Reference LoadReference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "reference.json")));
        var r = doc.RootElement;
        return new Reference(r.GetProperty("config").Clone(),
            r.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
            r.GetProperty("learning_rates").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
            r.GetProperty("grad_norms").EnumerateArray().Select(e => e.GetDouble()).ToArray());
    }

    internal static TrainerOptions OptionsFrom(JsonElement c) => new()
    {
        MaxSteps = c.GetProperty("steps").GetInt32(),
        MicroBatchSize = c.GetProperty("micro_batch").GetInt32(),
        GradientAccumulationSteps = c.GetProperty("accumulation").GetInt32(),
        LearningRate = c.GetProperty("lr").GetDouble(),
        WarmupSteps = c.GetProperty("warmup").GetInt32(),
        WeightDecay = c.GetProperty("weight_decay").GetDouble(),
        Beta1 = c.GetProperty("beta1").GetDouble(),
        Beta2 = c.GetProperty("beta2").GetDouble(),
        Epsilon = c.GetProperty("eps").GetDouble(),
        MaxGradNorm = c.GetProperty("max_grad_norm").GetDouble(),
        PadTokenId = c.GetProperty("pad_id").GetInt64(),
    };

    internal static TrainingData Data(bool shuffle = false, int seed = 0) =>
        TrainingData.Single(JsonlDatasetReader.ReadFile(Path.Combine(Dir, "data.jsonl")), new SftExampleBuilder(), seed, shuffle);

    [Fact]
    public void First_accumulated_batch_loss_and_gradients_match_pytorch()
    {
        torch.set_num_threads(1);
        var reference = LoadReference();
        using var model = TinyLm.FromFixture(Dir);
        var data = Data();
        var objective = new SftObjective();
        using var b1 = BatchCollator.Collate(data.Next(2), 0, CPU);
        using var b2 = BatchCollator.Collate(data.Next(2), 0, CPU);
        (b1.Length != b2.Length || b1.Examples.Any(e => e.Ids.Length != b1.Length)).Should().BeTrue("the fixture must exercise padding");
        var totals = objective.CountTokens(b1);
        totals.Add(objective.CountTokens(b2));
        objective.CountTokens(b1)[TokenCounts.DefaultGroup].Should().NotBe(objective.CountTokens(b2)[TokenCounts.DefaultGroup],
            "micro-batches with different token counts distinguish token-weighted from per-micro-batch means");
        double loss = 0;
        int i = 0;
        foreach (var b in new[] { b1, b2 })
        {
            var ctx = new ObjectiveContext { Student = model, Teachers = new Dictionary<string, DeepAlign.Models.ICausalLanguageModel>(), Totals = totals, Step = 0, MicroBatch = i++, Random = new Random(0) };
            var output = objective.Compute(b, ctx);
            output.Loss.backward();
            loss += output.Loss.item<float>();
        }
        loss.Should().BeApproximately(reference.Losses[0], 1e-5);
        var grads = TensorFile.Read(Path.Combine(Dir, "grads.safetensors"));
        foreach (var (name, p) in model.NamedParameters())
        {
            grads.Should().ContainKey(name);
            double diff = (p.grad!.sub(grads[name])).abs().max().item<float>();
            double scale = grads[name].abs().max().item<float>();
            diff.Should().BeLessThan(1e-5 + 1e-4 * scale, $"gradient of {name}");
        }
    }

    [Fact]
    public void Six_step_run_matches_pytorch_losses_learning_rates_grad_norms_and_final_weights()
    {
        torch.set_num_threads(1);
        var reference = LoadReference();
        using var model = TinyLm.FromFixture(Dir);
        using var trainer = new Trainer(model, new SftObjective(), OptionsFrom(reference.Config));
        var result = trainer.Train(Data());
        result.History.Select(h => h.Loss).Should().Equal(reference.Losses, (a, b) => Math.Abs(a - b) < 2e-5);
        result.History.Select(h => h.LearningRate).Should().Equal(reference.LearningRates, (a, b) => Math.Abs(a - b) < 1e-12);
        result.History.Select(h => h.GradientNorm).Should().Equal(reference.GradNorms, (a, b) => Math.Abs(a - b) < 1e-4);
        var final = TensorFile.Read(Path.Combine(Dir, "final.safetensors"));
        foreach (var (name, p) in model.NamedParameters())
        {
            double diff = p.detach().sub(final[name]).abs().max().item<float>();
            diff.Should().BeLessThan(2e-5, $"final weight {name}");
        }
    }

    [Fact]
    public void Accumulating_two_micro_batches_equals_one_batch_of_four()
    {
        torch.set_num_threads(1);
        var reference = LoadReference();
        var baseOptions = OptionsFrom(reference.Config) with { MaxSteps = 2 };
        using var m1 = TinyLm.FromFixture(Dir);
        using var m2 = TinyLm.FromFixture(Dir);
        using var t1 = new Trainer(m1, new SftObjective(), baseOptions with { MicroBatchSize = 2, GradientAccumulationSteps = 2 });
        using var t2 = new Trainer(m2, new SftObjective(), baseOptions with { MicroBatchSize = 4, GradientAccumulationSteps = 1 });
        var r1 = t1.Train(Data());
        var r2 = t2.Train(Data());
        r1.History.Select(h => h.Loss).Should().Equal(r2.History.Select(h => h.Loss), (a, b) => Math.Abs(a - b) < 1e-5);
        var p2 = m2.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        foreach (var (name, p) in m1.NamedParameters())
            p.detach().sub(p2[name]).abs().max().item<float>().Should().BeLessThan(1e-5f, name);
    }
}
