using DeepAlign.Models;
using DeepAlign.Training;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

public class ScheduleAndOptimizerTests
{
    [Fact]
    public void Warmup_then_cosine_matches_hand_computed_values()
    {
        var o = new TrainerOptions { LearningRate = 1.0, WarmupSteps = 2, MaxSteps = 6 };
        // s0: 1/2; s1: 2/2; then p = (s - 2) / 4: 0, 1/4, 1/2, 3/4 -> (1 + cos(pi p)) / 2.
        var expected = new[] { 0.5, 1.0, 1.0, (1 + Math.Sqrt(0.5)) / 2, 0.5, (1 - Math.Sqrt(0.5)) / 2 };
        Enumerable.Range(0, 6).Select(s => LearningRateSchedule.At(o, s)).Should().Equal(expected, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void Floor_linear_and_constant_variants()
    {
        var o = new TrainerOptions { LearningRate = 2.0, WarmupSteps = 0, MaxSteps = 4, MinLearningRateRatio = 0.1 };
        LearningRateSchedule.At(o, 0).Should().BeApproximately(2.0, 1e-12);
        LearningRateSchedule.At(o, 2).Should().BeApproximately(2.0 * (0.1 + 0.9 * 0.5), 1e-12);
        var lin = o with { Schedule = LearningRateScheduleKind.Linear };
        LearningRateSchedule.At(lin, 1).Should().BeApproximately(2.0 * (0.1 + 0.9 * 0.75), 1e-12);
        var c = o with { Schedule = LearningRateScheduleKind.Constant, WarmupSteps = 4 };
        LearningRateSchedule.At(c, 0).Should().BeApproximately(0.5, 1e-12);
        LearningRateSchedule.At(c, 3).Should().BeApproximately(2.0, 1e-12);
    }

    [Theory]
    [InlineData("MaxSteps")]
    [InlineData("LearningRate")]
    [InlineData("Beta1")]
    [InlineData("WeightDecay")]
    [InlineData("MaxGradNorm")]
    [InlineData("CheckpointDirectory")]
    public void Validate_names_the_bad_field(string field)
    {
        var o = field switch
        {
            "MaxSteps" => new TrainerOptions { MaxSteps = 0 },
            "LearningRate" => new TrainerOptions { LearningRate = double.NaN },
            "Beta1" => new TrainerOptions { Beta1 = 1.0 },
            "WeightDecay" => new TrainerOptions { WeightDecay = -0.1 },
            "MaxGradNorm" => new TrainerOptions { MaxGradNorm = 0 },
            _ => new TrainerOptions { CheckpointEvery = 5 },
        };
        var act = () => o.Validate();
        act.Should().Throw<ArgumentException>().Where(e => e.ParamName == field && e.Message.Contains(field));
    }

    /// <summary>A loss with zero gradient: only decoupled weight decay moves the weights.</summary>
    private sealed class ZeroGradientObjective : ITrainingObjective
    {
        public string Name => "zero";
        public IReadOnlyList<string> RequiredTeachers => Array.Empty<string>();
        public TokenCounts CountTokens(TrainingBatch batch) => new(TokenCounts.DefaultGroup, batch.TargetCount);
        public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
        {
            var sum = context.Student.TrainableParameters().Select(p => p.sum() * 0.0).Aggregate((a, b) => a + b);
            return new ObjectiveOutput { Loss = sum };
        }
    }

    [Fact]
    public void Weight_decay_shrinks_matrices_but_never_norms_or_biases()
    {
        torch.set_num_threads(1);
        using var model = TinyLm.FromFixture(SftReferenceTests.Dir);
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.detach().clone());
        var o = new TrainerOptions { MaxSteps = 1, MicroBatchSize = 2, LearningRate = 0.1, WeightDecay = 0.5, Schedule = LearningRateScheduleKind.Constant };
        using var trainer = new Trainer(model, new ZeroGradientObjective(), o);
        trainer.TrainableParameters.Where(p => !p.WeightDecay).Select(p => p.Name).Should().BeEquivalentTo(
            "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "model.layers.0.self_attn.q_proj.bias");
        trainer.Train(SftReferenceTests.Data());
        foreach (var (name, p) in model.NamedParameters())
        {
            bool decays = p.dim() >= 2;
            var expected = decays ? before[name] * (1 - 0.1 * 0.5) : before[name];
            p.detach().sub(expected).abs().max().item<float>().Should().BeLessThan(1e-6f, name);
        }
    }

    [Fact]
    public void Non_finite_loss_throws_naming_the_step_and_leaves_weights_untouched()
    {
        torch.set_num_threads(1);
        using var model = TinyLm.FromFixture(SftReferenceTests.Dir);
        var before = model.NamedParameters().First().Parameter.detach().clone();
        using var trainer = new Trainer(model, new NanObjective(), new TrainerOptions { MaxSteps = 3, MicroBatchSize = 2 });
        var act = () => trainer.Train(SftReferenceTests.Data());
        act.Should().Throw<TrainingDivergedException>().WithMessage("Step 1:*");
        model.NamedParameters().First().Parameter.detach().sub(before).abs().max().item<float>().Should().Be(0f);
    }

    private sealed class NanObjective : ITrainingObjective
    {
        public string Name => "nan";
        public IReadOnlyList<string> RequiredTeachers => Array.Empty<string>();
        public TokenCounts CountTokens(TrainingBatch batch) => new(TokenCounts.DefaultGroup, batch.TargetCount);
        public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context) =>
            new() { Loss = context.Student.TrainableParameters().First().sum() * double.NaN };
    }

    [Fact]
    public void Missing_teacher_is_reported_at_construction()
    {
        using var model = TinyLm.FromFixture(SftReferenceTests.Dir);
        var act = () => new Trainer(model, new NeedsTeacher(), new TrainerOptions());
        act.Should().Throw<ArgumentException>().WithMessage("*'aligned'*");
        var self = () => new Trainer(model, new NeedsTeacher(), new TrainerOptions(), new Dictionary<string, ICausalLanguageModel> { ["aligned"] = model });
        self.Should().Throw<ArgumentException>().WithMessage("*student itself*");
    }

    private sealed class NeedsTeacher : ITrainingObjective
    {
        public string Name => "needs";
        public IReadOnlyList<string> RequiredTeachers => new[] { "aligned" };
        public TokenCounts CountTokens(TrainingBatch batch) => new();
        public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context) => throw new NotSupportedException();
    }

    [Fact]
    public void Progress_reports_every_step_with_terms_throughput_and_eta()
    {
        torch.set_num_threads(1);
        using var model = TinyLm.FromFixture(SftReferenceTests.Dir);
        var reports = new List<TrainingProgress>();
        var evals = new List<long>();
        using var trainer = new Trainer(model, new SftObjective(), new TrainerOptions { MaxSteps = 4, MicroBatchSize = 2, EvaluateEvery = 2 })
        {
            Evaluate = ctx =>
            {
                evals.Add(ctx.Step);
                var (loss, _) = ctx.Trainer.EvaluateLoss(SftReferenceTests.Data().Next(4));
                return new Dictionary<string, double> { ["val_loss"] = loss };
            },
        };
        var r = trainer.Train(SftReferenceTests.Data(), new SyncProgress(reports.Add));
        reports.Select(p => p.Step).Should().Equal(1, 2, 3, 4);
        reports.Should().OnlyContain(p => p.Terms.ContainsKey("ce") && Math.Abs(p.Terms["ce"] - p.Loss) < 1e-9 && p.TokensPerSecond > 0 && p.TotalSteps == 4);
        reports[^1].EstimatedRemaining.Should().Be(TimeSpan.Zero);
        evals.Should().Equal(2, 4);
        reports[1].Evaluation.Should().ContainKey("val_loss");
        r.Evaluations.Should().HaveCount(2);
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }
}
