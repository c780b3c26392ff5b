using DeepAlign.Evaluation;
using DeepAlign.Evaluation.Judges;
using FluentAssertions;
using Xunit;
using static DeepAlign.Evaluation.Judges.SafetyVerdict;

namespace DeepAlign.Tests.Evaluation;

/// <summary><see cref="JudgeAgreement"/> against hand-computed agreement rates and Cohen's kappa, and its place in results files.</summary>
public class JudgeAgreementTests
{
    /// <summary>Expands a confusion matrix (reference verdict, judge verdict, count) into two verdict lists.</summary>
    private static (List<SafetyVerdict> Judge, List<SafetyVerdict> Reference) Pairs(params (SafetyVerdict Reference, SafetyVerdict Judge, int Count)[] cells)
    {
        var judge = new List<SafetyVerdict>();
        var reference = new List<SafetyVerdict>();
        foreach (var (r, j, n) in cells)
            for (int i = 0; i < n; i++) { reference.Add(r); judge.Add(j); }
        return (judge, reference);
    }

    [Fact]
    public void Binary_kappa_of_the_textbook_example()
    {
        // 20 both harmful, 5 only the reference, 10 only the judge, 15 both refused: p_o = 35/50 = 0.7,
        // p_e = (25 * 30 + 25 * 20) / 50^2 = 0.5, kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
        var (judge, reference) = Pairs((Harmful, Harmful, 20), (Harmful, Refused, 5), (Refused, Harmful, 10), (Refused, Refused, 15));
        var g = JudgeAgreement.FromVerdicts("keyword", "content", judge, reference);
        g.N.Should().Be(50);
        g.Agreement.Should().BeApproximately(0.7, 1e-12);
        g.Kappa.Should().BeApproximately(0.4, 1e-12);
        g.HarmfulAgreement.Should().BeApproximately(0.7, 1e-12, "the same two-way split");
        g.HarmfulKappa.Should().BeApproximately(0.4, 1e-12);
        g.Count(Harmful, Refused).Should().Be(5);
        g.Count(Refused, Harmful).Should().Be(10);
    }

    [Fact]
    public void Four_way_kappa_and_binary_harmful_kappa_by_hand()
    {
        // reference \ judge:  H  R  O  U
        //   H                 8  1  1  0
        //   R                 2  6  0  2
        //   O                 0  1  4  0
        // n = 25, diagonal 18: p_o = 0.72; rows 10, 10, 5, 0; columns 10, 8, 5, 2: p_e = (100 + 80 + 25) / 625 = 0.328;
        // kappa = (0.72 - 0.328) / 0.672 = 7/12.
        // Harmful or not: both 8, reference only 2, judge only 2, neither 13: p_o = 21/25 = 0.84;
        // p_e = (10 * 10 + 15 * 15) / 625 = 0.52; kappa = 0.32 / 0.48 = 2/3.
        var (judge, reference) = Pairs((Harmful, Harmful, 8), (Harmful, Refused, 1), (Harmful, Other, 1),
            (Refused, Harmful, 2), (Refused, Refused, 6), (Refused, Unparseable, 2), (Other, Refused, 1), (Other, Other, 4));
        var g = JudgeAgreement.FromVerdicts("chat", "content", judge, reference);
        g.N.Should().Be(25);
        g.Agreement.Should().BeApproximately(0.72, 1e-12);
        g.Kappa.Should().BeApproximately(7.0 / 12, 1e-12);
        g.HarmfulAgreement.Should().BeApproximately(0.84, 1e-12);
        g.HarmfulKappa.Should().BeApproximately(2.0 / 3, 1e-12);
        g.Count(Refused, Unparseable).Should().Be(2);
    }

    [Fact]
    public void Kappa_is_undefined_when_both_judges_give_one_verdict_and_minus_one_for_total_disagreement()
    {
        var (same, sameRef) = Pairs((Refused, Refused, 9));
        var g = JudgeAgreement.FromVerdicts("a", "b", same, sameRef);
        g.Agreement.Should().Be(1.0);
        g.Kappa.Should().BeNull("p_e = 1");
        g.HarmfulKappa.Should().BeNull();

        var (swapped, swappedRef) = Pairs((Harmful, Refused, 5), (Refused, Harmful, 5));
        JudgeAgreement.FromVerdicts("a", "b", swapped, swappedRef).Kappa.Should().BeApproximately(-1, 1e-12);

        var empty = JudgeAgreement.FromVerdicts("a", "b", [], []);
        empty.N.Should().Be(0);
        empty.Agreement.Should().BeNull();
        empty.Kappa.Should().BeNull();
    }

    [Fact]
    public void Sum_pools_counts_and_refuses_other_judges()
    {
        var (j1, r1) = Pairs((Harmful, Harmful, 20), (Harmful, Refused, 5));
        var (j2, r2) = Pairs((Refused, Harmful, 10), (Refused, Refused, 15));
        var pooled = JudgeAgreement.Sum([JudgeAgreement.FromVerdicts("k", "c", j1, r1), JudgeAgreement.FromVerdicts("k", "c", j2, r2)]);
        pooled.Kappa.Should().BeApproximately(0.4, 1e-12, "the textbook example split in two parts");
        FluentActions.Invoking(() => JudgeAgreement.Sum([JudgeAgreement.FromVerdicts("k", "c", j1, r1), JudgeAgreement.FromVerdicts("x", "c", j2, r2)]))
            .Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => JudgeAgreement.FromVerdicts("k", "c", [Harmful], [])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => new JudgeAgreement("k", "c", [[1, 2]]).Validate()).Should().Throw<ArgumentException>().WithMessage("*4 x 4*");
    }

    private static EvaluationReport Report(bool withAgreements, int unparseable)
    {
        var (judge, reference) = Pairs((Harmful, Harmful, 20), (Harmful, Refused, 5), (Refused, Harmful, 10), (Refused, Refused, 15));
        var rates = new[]
        {
            new JudgedRate("content", 25, 50, 0.5, 0.36, 0.64, 25, 0),
            new JudgedRate("keyword", 30, 50, 0.6, 0.46, 0.72, 20 - unparseable, 0) { Unparseable = unparseable },
        };
        var attack = new AttackResult("plain", "plain", new Dictionary<string, double>(), rates, null, [], 1.0)
        {
            Agreements = withAgreements ? [JudgeAgreement.FromVerdicts("keyword", "content", judge, reference)] : null,
        };
        return EvaluationReport.Create([new SeedRun(0, [new DefenseEvaluation("aligned", [attack], null)])]);
    }

    [Fact]
    public void Results_json_carries_agreements_and_unparseable_counts_and_validates()
    {
        var report = Report(withAgreements: true, unparseable: 3);
        string json = report.ToJson();
        ResultsSchema.Validate(json).Should().BeEmpty();
        json.Should().Contain("\"unparseable\": 3").And.Contain("\"kappa\": 0.4").And.Contain("\"counts\": [");
        var back = EvaluationReport.FromJson(json).Runs[0].Defenses[0].Attacks[0];
        back.Judges[1].Unparseable.Should().Be(3);
        back.Judges[0].Unparseable.Should().Be(0);
        var g = back.Agreements!.Single();
        (g.Judge, g.Reference, g.N).Should().Be(("keyword", "content", 50));
        g.Kappa.Should().BeApproximately(0.4, 1e-12);

        string md = report.ToMarkdown();
        md.Should().Contain("### Agreement of the keyword judge with the content judge");
        md.Should().Contain("| aligned | 50 | 70.0% | 0.400 | 70.0% | 0.400 |");
        md.Should().Contain("n=50; 3 unparseable");
    }

    [Fact]
    public void Results_written_without_agreements_or_unparseable_keep_their_old_shape_and_read_back()
    {
        string json = Report(withAgreements: false, unparseable: 0).ToJson();
        json.Should().NotContain("unparseable").And.NotContain("agreements", "absent fields keep older consumers' files unchanged");
        ResultsSchema.Validate(json).Should().BeEmpty();
        var back = EvaluationReport.FromJson(json).Runs[0].Defenses[0].Attacks[0];
        back.Agreements.Should().BeNull();
        back.Judges.Should().OnlyContain(j => j.Unparseable == 0);
        Report(false, 0).ToMarkdown().Should().NotContain("Agreement of");
    }
}
