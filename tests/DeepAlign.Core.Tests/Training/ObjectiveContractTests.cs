using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

/// <summary>The objective contract that multi-term objectives (targeted completion) rely on.</summary>
public class ObjectiveContractTests
{
    /// <summary>CE on "harmful" rows normalised by harmful target tokens plus 2 x CE on "benign" rows normalised by benign ones.</summary>
    private sealed class TwoGroupObjective : ITrainingObjective
    {
        public string Name => "two-group";
        public IReadOnlyList<string> RequiredTeachers => Array.Empty<string>();
        public TokenCounts CountTokens(TrainingBatch batch)
        {
            var c = new TokenCounts();
            foreach (var e in batch.Examples) c.Add(e.Source, e.TargetCount);
            return c;
        }
        public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
        {
            var logits = context.Student.Forward(batch.InputIds, batch.AttentionMask);
            using var hm = batch.TargetMaskFor("harmful");
            using var bm = batch.TargetMaskFor("benign");
            var h = context.Normalize(SftObjective.TargetNegLogLikelihoodSum(logits, batch.InputIds, hm), "harmful");
            var b = context.Normalize(SftObjective.TargetNegLogLikelihoodSum(logits, batch.InputIds, bm), "benign");
            return new ObjectiveOutput { Loss = h + 2 * b, Terms = new Dictionary<string, Tensor> { ["h"] = h.detach(), ["b"] = b.detach() } };
        }
    }

    private static TrainingData Mixed() => new(new[]
    {
        new DataSource("harmful", JsonlDatasetReader.ReadFile(Path.Combine(SftReferenceTests.Dir, "data.jsonl")).Take(3).ToArray(), new SftExampleBuilder(), 1, Shuffle: false),
        new DataSource("benign", JsonlDatasetReader.ReadFile(Path.Combine(SftReferenceTests.Dir, "data.jsonl")).Skip(3).ToArray(), new SftExampleBuilder(), 3, Shuffle: false),
    }, 0);

    /// <summary>Per-token NLL of one example, computed alone (no padding, no batching).</summary>
    private static double[] TokenNll(ICausalLanguageModel m, TrainingExample e)
    {
        using var _ = no_grad();
        using var ids = tensor(e.Ids, dtype: ScalarType.Int64).unsqueeze(0);
        using var logp = m.Forward(ids).log_softmax(-1);
        var result = new List<double>();
        for (int t = 1; t < e.Ids.Length; t++)
            if (e.Targets[t]) result.Add(-logp[0, t - 1, e.Ids[t]].item<float>());
        return result.ToArray();
    }

    [Fact]
    public void Each_group_is_a_mean_over_its_tokens_of_the_whole_accumulated_batch()
    {
        torch.set_num_threads(1);
        using var model = TinyLm.FromFixture(SftReferenceTests.Dir);
        var examples = Mixed().Next(8); // 2 harmful, 6 benign, in mixer order
        var harmful = examples.Where(e => e.Source == "harmful").SelectMany(e => TokenNll(model, e)).ToArray();
        var benign = examples.Where(e => e.Source == "benign").SelectMany(e => TokenNll(model, e)).ToArray();
        double expectedH = harmful.Average(), expectedB = benign.Average();

        var o = new TrainerOptions { MaxSteps = 1, MicroBatchSize = 2, GradientAccumulationSteps = 4, LearningRate = 1e-9, MaxGradNorm = null };
        using var trainer = new Trainer(model, new TwoGroupObjective(), o);
        var r = trainer.Train(Mixed());
        r.History[0].Terms["h"].Should().BeApproximately(expectedH, 1e-5);
        r.History[0].Terms["b"].Should().BeApproximately(expectedB, 1e-5);
        r.History[0].Loss.Should().BeApproximately(expectedH + 2 * expectedB, 2e-5);
        r.History[0].TargetTokens.Should().Be(harmful.Length + benign.Length);
    }

    [Fact]
    public void A_group_absent_from_the_whole_step_contributes_zero_not_NaN()
    {
        var totals = new TokenCounts("benign", 5);
        var ctx = new ObjectiveContext { Student = null!, Teachers = new Dictionary<string, ICausalLanguageModel>(), Totals = totals, Step = 0, MicroBatch = 0, Random = new Random(0) };
        using var sum = tensor(3.0f);
        using var zero = ctx.Normalize(sum, "harmful");
        zero.item<float>().Should().Be(0f);
        using var mean = ctx.Normalize(sum, "benign");
        mean.item<float>().Should().BeApproximately(0.6f, 1e-7f);
    }

    [Fact]
    public void Lora_on_a_bfloat16_model_keeps_fp32_adapters_and_trains()
    {
        torch.set_num_threads(1);
        var dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", "llama_bf16");
        using var model = CausalLanguageModel.FromPretrained(dir, CPU, ScalarType.BFloat16);
        model.DType.Should().Be(ScalarType.BFloat16);
        LoraApplier.Apply(model, new LoraOptions { Rank = 2, Alpha = 4, Dropout = 0 });
        LoraApplier.Adapters(model).Should().OnlyContain(a => a.Adapter.LoraA.dtype == ScalarType.Float32 && a.Adapter.BaseWeight.dtype == ScalarType.BFloat16);
        var data = TrainingData.Single(JsonlDatasetReader.ReadFile(Path.Combine(AppContext.BaseDirectory, "Fixtures", "training", "sft_llama", "data.jsonl")), new SftExampleBuilder(), 0);
        using var trainer = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = 2, MicroBatchSize = 3, LearningRate = 1e-2 });
        var r = trainer.Train(data);
        r.History.Should().OnlyContain(h => double.IsFinite(h.Loss) && h.GradientNorm > 0);
        LoraApplier.Adapters(model).Should().OnlyContain(a => a.Adapter.LoraB.abs().max().item<float>() > 0);
    }
}

public class TrainerLeakTests
{
    [Fact]
    public void Training_steps_leak_no_tensors()
    {
        torch.set_num_threads(1);
        using var model = CausalLanguageModel.FromPretrained(Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", "llama_gqa"));
        LoraApplier.Apply(model, new LoraOptions { Rank = 2, Alpha = 4 });
        var data = TrainingData.Single(JsonlDatasetReader.ReadFile(Path.Combine(AppContext.BaseDirectory, "Fixtures", "training", "sft_llama", "data.jsonl")), new SftExampleBuilder(), 0);
        using var warm = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = 2, MicroBatchSize = 2, GradientAccumulationSteps = 2 });
        warm.Train(data);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using var trainer = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = 2, MicroBatchSize = 2, GradientAccumulationSteps = 2 });
        trainer.Train(data);
        long afterTwo = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using var longer = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = 12, MicroBatchSize = 2, GradientAccumulationSteps = 2 });
        longer.Train(data);
        long afterTwelve = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        // The optimiser state of each new trainer stays alive (2 moments per trainable tensor); per-step tensors do not.
        (afterTwelve - afterTwo).Should().BeLessThanOrEqualTo(afterTwo - before, "live tensors must not grow with the number of steps");
    }
}
