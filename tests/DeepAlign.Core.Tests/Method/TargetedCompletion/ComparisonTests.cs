using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Training;
using FluentAssertions;
using Xunit;
using Xunit.Abstractions;

namespace DeepAlign.Tests.Method.TargetedCompletion;

/// <summary>The equal-budget comparison helper on the behaviour test's small pair.</summary>
public sealed class ComparisonTests(ITestOutputHelper output)
{
    [Fact]
    public void Every_objective_gets_the_same_grid_and_the_chosen_rate_minimises_its_own_validation_loss()
    {
        var (harmful, benign) = BehaviourTests.World(24, 48, seed: 5);
        var (baseModel, aligned) = BehaviourTests.BuildPair(harmful, benign);
        using var _b = baseModel;
        using var _a = aligned;
        var options = new ComparisonOptions
        {
            LearningRates = new[] { 1e-3, 3e-3 },
            ValidationFraction = 0.25,
            Training = new TargetedCompletionTrainerOptions { Trainer = new TrainerOptions { MaxSteps = 6, MicroBatchSize = 5, Seed = 2 } },
            KeepModels = false,
        };
        var result = TargetedCompletionComparison.Run(() => BehaviourTests.Copy(aligned), aligned, baseModel, harmful, benign, null, options);
        output.WriteLine(result.ToTable());
        result.Entries.Select(e => e.Objective).Should().Equal(AlignmentObjectives.All);
        (result.ValidationHarmful, result.ValidationBenign).Should().Be((6, 12));
        result.Reference.BenignKl.Should().Be(0, "the aligned model against itself");
        foreach (var e in result.Entries)
        {
            e.Candidates.Select(c => c.LearningRate).Should().Equal(1e-3, 3e-3);
            e.Best.ValidationLoss.Should().Be(e.Candidates.Min(c => c.ValidationLoss));
            e.Training.Steps.Should().Be(6);
            e.Model.Should().BeNull();
            double.IsFinite(e.Best.Metrics.SafetyCrossEntropy).Should().BeTrue();
            e.Best.Metrics.IncompletenessLate.Should().NotBeNull();
        }
        result.ToTable().Should().Contain("targeted-completion").And.Contain("constrained");
    }
}
