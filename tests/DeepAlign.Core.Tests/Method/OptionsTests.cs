using DeepAlign.Method;
using FluentAssertions;
using Xunit;
using DeepAlign.Method.Baselines;

namespace DeepAlign.Tests.Method;

public class OptionsTests
{
    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var o = new IncompletenessOptions().Validate();
        o.Tau.Should().Be(0);
        o.TopKBase.Should().Be(50);
        Enumerable.Range(0, o.BucketStarts.Count).Select(o.BucketLabel).Should().Equal("1", "2-5", "6-10", "11-20", "21-40", "41+");
        new[] { 1, 2, 5, 6, 10, 11, 20, 21, 40, 41, 1000 }.Select(o.BucketIndex).Should().Equal(0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5);
        var c = new ContrastiveScoringOptions().Validate();
        c.PlausibilityBeta.Should().Be(0.1);
        c.Rule.Should().Be(ContrastiveRule.Full);
        c.Alpha.Should().Be(new ConstantAlpha(1.0));
        new LinearRampAlpha().Should().Be(new LinearRampAlpha(0.5, 2.0, 32));
        new IncompletenessDrivenAlpha().AlphaMax.Should().Be(2.0);
        var h = new HybridTeacherOptions().Validate();
        (h.MaxMix, h.ConstantMix, h.TeacherAlpha, h.PlausibilityBeta).Should().Be((0.5, (double?)null, 1.0, 0.1));
        var w = new PositionWeightOptions().Validate();
        (w.Rho, w.MaxWeight, w.RampLength).Should().Be((0.5, 4.0, 32));
        var b = new ConstrainedBetaSchedule().Validate();
        (b.FirstBeta, b.EarlyBeta, b.EarlyLastPosition, b.LateBeta).Should().Be((0.5, 2.0, 5, 0.1));
    }

    [Fact]
    public void Validate_names_the_bad_field()
    {
        Bad(() => new IncompletenessOptions { Tau = -0.1 }.Validate(), "Tau");
        Bad(() => new IncompletenessOptions { Tau = double.NaN }.Validate(), "Tau");
        Bad(() => new IncompletenessOptions { TopKBase = 0 }.Validate(), "TopKBase");
        Bad(() => new IncompletenessOptions { ReportTopItems = -1 }.Validate(), "ReportTopItems");
        Bad(() => new IncompletenessOptions { BucketStarts = [2, 5] }.Validate(), "BucketStarts");
        Bad(() => new IncompletenessOptions { BucketStarts = [1, 5, 5] }.Validate(), "BucketStarts");
        Bad(() => new ContrastiveScoringOptions { PlausibilityBeta = 1.5 }.Validate(), "PlausibilityBeta");
        Bad(() => new ContrastiveScoringOptions { Alpha = new LinearRampAlpha(RampLength: 0) }.Validate(), "RampLength");
        Bad(() => new ContrastiveScoringOptions { Alpha = new ConstantAlpha(-1) }.Validate(), "Alpha");
        Bad(() => new HybridTeacherOptions { MaxMix = 2 }.Validate(), "MaxMix");
        Bad(() => new HybridTeacherOptions { ConstantMix = -0.1 }.Validate(), "ConstantMix");
        Bad(() => new PositionWeightOptions { MaxWeight = 0.5 }.Validate(), "MaxWeight");
        Bad(() => new PositionWeightOptions { Rho = -1 }.Validate(), "Rho");
        Bad(() => new ConstrainedBetaSchedule { LateBeta = 0 }.Validate(), "LateBeta");
        Bad(() => new ConstrainedBetaSchedule { EarlyLastPosition = 0 }.Validate(), "EarlyLastPosition");
    }

    private static void Bad(Action a, string field)
        => a.Should().Throw<ArgumentException>().Where(e => e.ParamName == field && e.Message.Contains(field), $"the message and ParamName name {field}");
}
