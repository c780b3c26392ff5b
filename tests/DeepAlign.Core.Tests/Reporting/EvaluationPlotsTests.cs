using DeepAlign.Evaluation;
using DeepAlign.Reporting;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Reporting;

/// <summary>The evaluation result plots of DeepAlign.Reporting on hand-made reports.</summary>
public class EvaluationPlotsTests
{
    private static JudgedRate Rate(string judge, int successes, int n)
    {
        var e = RateEstimate.Wilson(successes, n);
        return new JudgedRate(judge, successes, n, e.Rate, e.Low, e.High, n - successes, 0);
    }

    private static AttackResult Attack(string attack, string label, IReadOnlyDictionary<string, double> parameters, params JudgedRate[] judges) =>
        new(attack, label, parameters, judges, null, [], 1.0);

    private static AttackResult Prefill(int k, int successes) =>
        Attack("prefill", $"prefill K={k}", new Dictionary<string, double> { ["k"] = k }, Rate("content", successes, 20), Rate("keyword", successes + 1, 20));

    private static EvaluationReport Report(params DefenseEvaluation[] defenses) => EvaluationReport.Create([new SeedRun(0, defenses)]);

    [Fact]
    public void Writes_both_plots_as_valid_png()
    {
        using var dir = new TempDir();
        var report = Report(
            new DefenseEvaluation("aligned", [Attack("plain", "plain", new Dictionary<string, double>(), Rate("content", 1, 20)), Prefill(10, 12), Prefill(5, 8)], null),
            new DefenseEvaluation("targeted", [Attack("plain", "plain", new Dictionary<string, double>(), Rate("content", 0, 20)), Prefill(5, 1), Prefill(10, 2)], null),
            new DefenseEvaluation("base", [], null));
        string target = Path.Combine(dir.Path, "results");

        var written = EvaluationPlots.Write(report, target);

        written.Should().Equal(EvaluationPlots.PrefillFile, EvaluationPlots.ByAttackFile);
        ImageFiles.ShouldBePng(Path.Combine(target, EvaluationPlots.PrefillFile), 720, 440);
        ImageFiles.ShouldBePng(Path.Combine(target, EvaluationPlots.ByAttackFile), 900, 480);
        Directory.GetFiles(target).Select(Path.GetFileName).Should().BeEquivalentTo(EvaluationPlots.PrefillFile, EvaluationPlots.ByAttackFile);
    }

    [Fact]
    public void Skips_plots_without_data_for_the_judge()
    {
        using var dir = new TempDir();
        var plainOnly = Report(new DefenseEvaluation("aligned", [Attack("plain", "plain", new Dictionary<string, double>(), Rate("keyword", 3, 20))], null));
        EvaluationPlots.Write(plainOnly, dir.Path, judge: "keyword").Should().Equal(EvaluationPlots.ByAttackFile);
        File.Exists(dir.File(EvaluationPlots.PrefillFile)).Should().BeFalse();

        using var other = new TempDir();
        EvaluationPlots.Write(plainOnly, other.Path).Should().BeEmpty("no attack was rated by the content judge");
        EvaluationPlots.Write(EvaluationReport.Create([]), other.Path).Should().BeEmpty();
        Directory.GetFiles(other.Path).Should().BeEmpty();
    }

    [Theory]
    [InlineData("prefill K=10", "prefill 10")]
    [InlineData("rank-assisted K=5 r=3", "rank-assisted")]
    [InlineData("decoding sweep", "sweep")]
    [InlineData("plain", "plain")]
    public void Short_axis_labels(string label, string expected) => EvaluationPlots.ShortLabel(label).Should().Be(expected);
}
