using System.Text.Json;
using DeepAlign.Models;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Tests.Support;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Cli;

/// <summary><c>deepalign train --objective dpo</c> as a process on the DPO reference fixture (tiny Llama, pre-tokenized pairs).</summary>
public class DpoTrainCommandTests : IDisposable
{
    private static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "dpo");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string[] Args(string output, params string[] extra) =>
        new[] { "train", "--objective", "dpo", "--model", Path.Combine(Fixture, "policy"), "--data", Path.Combine(Fixture, "data.jsonl"),
            "--output", _dir.File(output), "--steps", "3", "--batch-size", "2", "--lr", "1e-2", "--json" }.Concat(extra).ToArray();

    private static List<JsonElement> Steps(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("step", out _)).ToList();

    [Fact]
    public void Dpo_starts_at_ln2_reports_trl_metrics_raises_the_margin_and_exports_a_model()
    {
        var (code, stdout, err) = CliRunner.AsProcess(Args("full"));
        code.Should().Be(0, err);
        var steps = Steps(stdout);
        steps.Should().HaveCount(3);
        steps[0].GetProperty("loss").GetDouble().Should().BeApproximately(Math.Log(2), 1e-5, "the reference is the starting model, so every log-ratio is 0 at step 1");
        var terms = steps[^1].GetProperty("terms");
        foreach (var t in new[] { "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected" })
            terms.TryGetProperty(t, out _).Should().BeTrue(t);
        terms.GetProperty("rewards/margins").GetDouble().Should().BePositive("two updates toward the chosen answers open a margin");
        using var m = CausalLanguageModel.FromPretrained(_dir.File("full"));
        m.Config.VocabSize.Should().BePositive();
    }

    [Fact]
    public void Dpo_with_an_explicit_reference_differs_from_the_self_reference()
    {
        var (code, stdout, err) = CliRunner.AsProcess(Args("ref", "--ref", Path.Combine(Fixture, "reference"), "--loss-type", "ipo"));
        code.Should().Be(0, err);
        Steps(stdout)[0].GetProperty("loss").GetDouble().Should().NotBeApproximately(1 / (4 * 0.1 * 0.1), 1e-3,
            "with a different reference the log-ratios are not 0 at step 1");
    }

    [Fact]
    public void Dpo_flags_are_checked()
    {
        var (code, _, err) = CliRunner.AsProcess(Args("bad", "--loss-type", "hinge"));
        code.Should().Be(2);
        err.Trim().Should().Contain("--loss-type").And.NotContain("\n");
        (code, _, err) = CliRunner.AsProcess("train", "--objective", "sft", "--model", Path.Combine(Fixture, "policy"), "--data", Path.Combine(Fixture, "data.jsonl"),
            "--output", _dir.File("x"), "--ref", Path.Combine(Fixture, "reference"));
        code.Should().Be(2);
        err.Should().Contain("--ref is for --objective dpo");
        Directory.Exists(_dir.File("bad")).Should().BeFalse("nothing is written before the flags are checked");
    }
}
