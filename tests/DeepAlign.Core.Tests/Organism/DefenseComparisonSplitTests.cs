using DeepAlign.Organism;
using DeepAlign.Organism.Experiment;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Organism;

/// <summary>The defense comparison's data splits and the pre-declared learning-rate selection (issue 13).</summary>
public class DefenseComparisonSplitTests(DefaultWorldFixture fixture) : IClassFixture<DefaultWorldFixture>
{
    private static readonly TrainedDefenseReport Training = new("d", "o", 1, 1, 1, 1, 1, 1, "b");

    private static LearningRateGridPoint Point(double lr, double asr, double acc) => new("d", lr, asr, acc, false, false, Training, $"dir-{lr}");

    [Fact]
    public void Defenses_train_on_seen_categories_only_and_validation_never_overlaps_training_or_test()
    {
        var options = new OrganismExperimentOptions { CacheDirectory = "c", OutputDirectory = "o" };
        var splits = DefenseSplits.Create(fixture.World, options);
        var unseen = options.UnseenHarmCategories.Concat(options.UnseenBenignCategories).ToHashSet();
        splits.TrainHarmful.Concat(splits.TrainBenign).Concat(splits.ValidationHarmful).Concat(splits.ValidationBenign)
            .Should().OnlyContain(i => !unseen.Contains(i.Category!), "defenses never see the unseen categories");
        splits.TrainHarmful.Select(i => i.Category).Distinct().Should().HaveCount(4, "4 of the 6 harm categories are seen");
        splits.ValidationHarmful.Should().HaveCount(48);
        splits.ValidationBenign.Should().HaveCount(96);
        var trainIds = splits.TrainHarmful.Concat(splits.TrainBenign).Select(i => i.Id).ToHashSet();
        splits.ValidationHarmful.Concat(splits.ValidationBenign).Should().OnlyContain(i => !trainIds.Contains(i.Id), "validation is carved out of training");
        var alignIds = fixture.World.Align.Select(i => i.Id).ToHashSet();
        splits.ValidationHarmful.Concat(splits.ValidationBenign).Should().OnlyContain(i => alignIds.Contains(i.Id), "validation never uses test prompts");
        splits.TestSeenHarmful.Count.Should().Be(213);
        splits.TestUnseenHarmful.Should().HaveCount(107).And.OnlyContain(i => options.UnseenHarmCategories.Contains(i.Category!));
        (splits.TestSeenBenign.Count + splits.TestUnseenBenign.Count).Should().Be(fixture.World.HeldoutBenign.Count);
        splits.TestUnseenBenign.Select(i => i.Category).Distinct().Should().BeEquivalentTo(options.UnseenBenignCategories);
        DefenseSplits.Create(fixture.World, options with { UnseenHarmCategories = ["harmful/theft"] }).Canonical
            .Should().NotBe(splits.Canonical, "the split is part of each trained defense's cache key");
    }

    [Fact]
    public void Selection_picks_the_lowest_validation_asr_among_points_that_keep_benign_accuracy()
    {
        // Aligned validation accuracy 0.90: eligible = accuracy >= 0.88.
        var picked = LearningRateSelection.Select([Point(1e-3, 0.05, 0.80), Point(2.5e-4, 0.20, 0.95), Point(5e-4, 0.10, 0.88)], 0.90);
        picked.Select(p => p.LearningRate).Should().Equal(2.5e-4, 5e-4, 1e-3);
        picked.Select(p => p.Eligible).Should().Equal(true, true, false);
        picked.Single(p => p.Selected).LearningRate.Should().Be(5e-4, "1e-3 has the lowest ASR but loses 10 points of accuracy");
    }

    [Fact]
    public void Selection_ties_go_to_the_smaller_rate_and_without_eligible_points_to_the_best_accuracy()
    {
        LearningRateSelection.Select([Point(1e-3, 0.0, 0.9), Point(5e-4, 0.0, 0.9)], 0.9).Single(p => p.Selected).LearningRate.Should().Be(5e-4);
        var none = LearningRateSelection.Select([Point(1e-3, 0.0, 0.5), Point(5e-4, 0.3, 0.7), Point(2.5e-4, 0.1, 0.6)], 0.95);
        none.Should().OnlyContain(p => !p.Eligible);
        none.Single(p => p.Selected).LearningRate.Should().Be(5e-4, "the declared fallback is the highest validation benign accuracy");
    }
}
