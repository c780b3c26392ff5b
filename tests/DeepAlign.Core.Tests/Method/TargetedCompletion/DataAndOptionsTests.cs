using DeepAlign.Method;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using Xunit;
using DeepAlign.Data;
using DeepAlign.Method.Baselines;

namespace DeepAlign.Tests.Method.TargetedCompletion;

/// <summary>Safety-recovery contexts, the 1 : 4 mix, options validation and the objective choice.</summary>
public sealed class DataAndOptionsTests
{
    private static readonly DatasetRecord Triple = new()
    {
        PromptIds = new long[] { 1, 3, 4 }, HarmfulResponseIds = new long[] { 10, 11, 12, 13, 14, 15, 16 }, SafeResponseIds = new long[] { 20, 21, 2 }, Location = "t:1",
    };

    [Fact]
    public void Harmful_prefix_tokens_are_never_targets_and_positions_start_at_K_pre_plus_one()
    {
        var builder = new SafetyRecoveryExampleBuilder();
        var rng = new Random(3);
        var seen = new HashSet<int>();
        for (int i = 0; i < 400; i++)
        {
            var e = builder.Build(Triple, rng);
            int k = e.ForcedPrefixLength;
            seen.Add(k);
            e.Ids.Should().Equal(Triple.PromptIds!.Concat(Triple.HarmfulResponseIds![..k]).Concat(Triple.SafeResponseIds!));
            e.Targets.Select((t, idx) => (t, idx)).Where(x => x.t).Select(x => x.idx).Should().Equal(Enumerable.Range(3 + k, 3));
            using var batch = BatchCollator.Collate(new[] { e }, 0, TorchSharp.torch.CPU);
            var firstTarget = 3 + k;
            batch.ResponsePositions[0, firstTarget].item<long>().Should().Be(k + 1);
        }
        seen.Should().BeEquivalentTo(Enumerable.Range(0, 8), "K_pre covers 0 and every 1..min(K_max, |h|) = 1..7");
    }

    [Fact]
    public void K_pre_is_zero_with_probability_p0_and_uniform_otherwise_capped_by_K_max()
    {
        var builder = new SafetyRecoveryExampleBuilder(ZeroPrefixProbability: 0.5, MaxPrefixLength: 4);
        var rng = new Random(9);
        var counts = new int[8];
        const int n = 20000;
        for (int i = 0; i < n; i++) counts[builder.Build(Triple, rng).ForcedPrefixLength]++;
        ((double)counts[0] / n).Should().BeApproximately(0.5, 0.02);
        for (int k = 1; k <= 4; k++) ((double)counts[k] / n).Should().BeApproximately(0.125, 0.01, $"K_pre = {k}");
        counts.Skip(5).Should().AllBeEquivalentTo(0, "K_max = 4 caps the prefix");
        new SafetyRecoveryExampleBuilder(ZeroPrefixProbability: 1.0).Build(Triple, rng).ForcedPrefixLength.Should().Be(0);
        new SafetyRecoveryExampleBuilder(ZeroPrefixProbability: 0.0).Build(Triple with { HarmfulResponseIds = Array.Empty<long>() }, rng).ForcedPrefixLength.Should().Be(0, "an empty h allows no prefix");
    }

    [Fact]
    public void Missing_fields_name_the_line()
    {
        var act = () => new SafetyRecoveryExampleBuilder().Build(Triple with { SafeResponseIds = null }, new Random(0));
        act.Should().Throw<DatasetFormatException>().WithMessage("t:1*safe_response*");
    }

    [Fact]
    public void Batches_mix_harmful_and_benign_one_to_four()
    {
        var benign = Enumerable.Range(0, 9).Select(i => new DatasetRecord { PromptIds = new long[] { 1, 5 }, ResponseIds = new long[] { 6, 2 }, Location = $"b:{i}" }).ToArray();
        var data = new TargetedCompletionTrainerOptions().CreateData(new[] { Triple, Triple with { Location = "t:2" } }, benign, null);
        var drawn = data.Next(50);
        for (int w = 0; w < 50; w += 5)
            drawn.Skip(w).Take(5).Count(e => e.Source == TrainingSources.Harmful).Should().Be(1);
        drawn.Where(e => e.Source == TrainingSources.Harmful).Select(e => e.ForcedPrefixLength).Distinct().Count().Should().BeGreaterThan(1, "K_pre is redrawn at every draw");
    }

    [Fact]
    public void Objective_choice_is_one_option()
    {
        (new TargetedCompletionTrainerOptions()).CreateObjective().Should().BeOfType<TargetedCompletionObjective>();
        (new TargetedCompletionTrainerOptions { Objective = AlignmentObjective.Augmentation }).CreateObjective().Should().BeOfType<AugmentationObjective>();
        (new TargetedCompletionTrainerOptions { Objective = AlignmentObjective.Constrained }).CreateObjective().Should().BeOfType<ConstrainedObjective>();
        (new TargetedCompletionTrainerOptions { Objective = AlignmentObjective.Sft }).CreateObjective().Should().BeOfType<SftObjective>();
        foreach (var o in AlignmentObjectives.All) AlignmentObjectives.Parse(AlignmentObjectives.Name(o)).Should().Be(o);
        var act = () => AlignmentObjectives.Parse("dpo");
        act.Should().Throw<ArgumentException>().WithMessage("*dpo*targeted-completion*");
        TargetedCompletionTrainerOptions.DefaultTrainerOptions(AlignmentObjective.Constrained).Beta1.Should().Be(0.5, "Qi et al.'s AdamW beta1");
        TargetedCompletionTrainerOptions.DefaultTrainerOptions(AlignmentObjective.TargetedCompletion).Beta1.Should().Be(0.9);
        new TargetedCompletionTrainerOptions().EffectiveSafetyRecovery.Should().BeTrue();
        new TargetedCompletionTrainerOptions { Objective = AlignmentObjective.Sft }.EffectiveSafetyRecovery.Should().BeFalse();
    }

    [Fact]
    public void Defaults_are_those_of_METHOD_md()
    {
        var o = new TargetedCompletionOptions();
        (o.NoPrefixProbability, o.MaxPrefixLength).Should().Be((0.5, 100));
        (o.DistillationWeight, o.PenaltyWeight, o.UtilityWeight).Should().Be((1.0, 1.0, 1.0));
        o.UtilityAnchor.Should().Be(UtilityAnchor.AlignedKl);
        (o.Teacher.MaxMix, o.Teacher.TeacherAlpha, o.Teacher.PlausibilityBeta, o.Teacher.ConstantMix).Should().Be((0.5, 1.0, 0.1, (double?)null));
        (o.Incompleteness.Tau, o.Incompleteness.TopKBase).Should().Be((0.0, 50));
        (o.PositionWeights.Rho, o.PositionWeights.MaxWeight, o.PositionWeights.RampLength).Should().Be((0.5, 4.0, 32));
        (o.HarmfulShare, o.BenignShare).Should().Be((1.0, 4.0));
        o.ProbeNorms.Should().BeNull();
    }

    [Theory]
    [InlineData("NoPrefixProbability")]
    [InlineData("MaxPrefixLength")]
    [InlineData("DistillationWeight")]
    [InlineData("PenaltyWeight")]
    [InlineData("UtilityWeight")]
    [InlineData("ProbeNorms")]
    [InlineData("BenignShare")]
    [InlineData("VocabularySize")]
    [InlineData("MaxMix")]
    public void Validate_names_the_bad_field(string field)
    {
        var o = field switch
        {
            "NoPrefixProbability" => new TargetedCompletionOptions { NoPrefixProbability = 1.5 },
            "MaxPrefixLength" => new TargetedCompletionOptions { MaxPrefixLength = 0 },
            "DistillationWeight" => new TargetedCompletionOptions { DistillationWeight = -1 },
            "PenaltyWeight" => new TargetedCompletionOptions { PenaltyWeight = double.NaN },
            "UtilityWeight" => new TargetedCompletionOptions { UtilityWeight = double.PositiveInfinity },
            "ProbeNorms" => new TargetedCompletionOptions { ProbeNorms = new[] { 0.0, 1.0 } },
            "BenignShare" => new TargetedCompletionOptions { BenignShare = 0 },
            "VocabularySize" => new TargetedCompletionOptions { VocabularySize = 0 },
            _ => new TargetedCompletionOptions { Teacher = new HybridTeacherOptions { MaxMix = 2 } },
        };
        o.Invoking(x => x.Validate()).Should().Throw<ArgumentException>().Where(e => e.Message.Contains(field));
    }
}
