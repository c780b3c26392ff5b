using DeepAlign.Tests.Support;
using System.Diagnostics;
using System.Text.Json;
using DeepAlign.Method.Detection;
using DeepAlign.Models;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Cli;

/// <summary>Runs <c>deepalign train --objective targeted-completion|constrained ...</c> as a process on the tiny pair of Fixtures/targeted.</summary>
public sealed class TargetedTrainCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "deepalign-cli-tc-" + Guid.NewGuid().ToString("N"));
    private static readonly string Pair = Path.Combine(AppContext.BaseDirectory, "Fixtures", "targeted");

    public TargetedTrainCommandTests()
    {
        Directory.CreateDirectory(_dir);
        var rng = new Random(1);
        long[] Ids(int n) => Enumerable.Range(0, n).Select(_ => (long)rng.Next(3, 40)).ToArray();
        File.WriteAllLines(Path.Combine(_dir, "harmful.jsonl"), Enumerable.Range(0, 4).Select(_ => JsonSerializer.Serialize(new
        {
            prompt_ids = Ids(4), harmful_response_ids = Ids(6), safe_response_ids = Ids(3),
        })));
        File.WriteAllLines(Path.Combine(_dir, "benign.jsonl"), Enumerable.Range(0, 8).Select(_ => JsonSerializer.Serialize(new { prompt_ids = Ids(4), response_ids = Ids(4) })));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.AsProcess(args);

    private string[] Args(string objective, string output, params string[] extra) =>
        new[] { "train", "--objective", objective, "--base", Path.Combine(Pair, "base"), "--aligned", Path.Combine(Pair, "aligned"),
            "--harmful", Path.Combine(_dir, "harmful.jsonl"), "--benign", Path.Combine(_dir, "benign.jsonl"),
            "--output", Path.Combine(_dir, output), "--steps", "2", "--batch-size", "5", "--lr", "1e-3", "--json" }.Concat(extra).ToArray();

    [Fact]
    public void Targeted_completion_trains_logs_every_term_and_exports_a_loadable_model()
    {
        var (code, stdout, err) = Run(Args("targeted-completion", "tc", "--lambda-pen", "2"));
        code.Should().Be(0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(3);
        using (var step = JsonDocument.Parse(lines[0]))
        {
            var terms = step.RootElement.GetProperty("terms");
            foreach (var t in new[] { "ce", "kl", "pen", "util", "u" }) terms.TryGetProperty(t, out _).Should().BeTrue(t);
        }
        using var m = CausalLanguageModel.FromPretrained(Path.Combine(_dir, "tc"));
        m.Config.VocabSize.Should().Be(40);
    }

    [Fact]
    public void Constrained_with_lora_reports_the_softplus_loss()
    {
        var (code, stdout, err) = Run(Args("constrained", "c", "--lora", "--lora-rank", "2"));
        code.Should().Be(0, err);
        using var step = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0]);
        step.RootElement.GetProperty("terms").GetProperty("constrained").GetDouble().Should().BeApproximately(step.RootElement.GetProperty("loss").GetDouble(), 1e-5);
        File.Exists(Path.Combine(_dir, "c", "adapter", "adapter_config.json")).Should().BeTrue();
    }

    [Fact]
    public void Targeted_completion_without_base_is_a_usage_error()
    {
        var args = Args("targeted-completion", "x").Where((a, i) => i != 3 && i != 4).ToArray(); // drop --base DIR
        var (code, _, err) = Run(args);
        code.Should().Be(2);
        err.Trim().Should().Contain("--base").And.NotContain("\n");
    }

    private static double[] Losses(string stdout) => stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Where(l => l.Contains("\"step\"")).Select(l => { using var d = JsonDocument.Parse(l); return d.RootElement.GetProperty("loss").GetDouble(); }).ToArray();

    [Fact]
    public void Probe_writes_the_library_probes_norms_and_probe_norms_reproduces_its_losses()
    {
        var (code, stdout, err) = Run(Args("targeted-completion", "p", "--probe", "2"));
        code.Should().Be(0, err);
        string file = Path.Combine(_dir, "p", "probe-norms.json");
        File.Exists(file).Should().BeTrue();
        using var written = JsonDocument.Parse(File.ReadAllText(file));
        // J = max over harmful lines of min(K_max = 100, |h| = 6) + |r| = 3.
        written.RootElement.GetProperty("positions").GetInt32().Should().Be(9);
        written.RootElement.GetProperty("sequences").GetInt32().Should().Be(2);
        var norms = written.RootElement.GetProperty("norms").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var probeLine = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single(l => l.Contains("\"probe_seconds\""));
        using (var line = JsonDocument.Parse(probeLine))
            line.RootElement.GetProperty("probe_seconds").GetDouble().Should().BeGreaterThanOrEqualTo(0);

        // The same probe through the library: the aligned model, the first two harmful lines (prompt + harmful reference).
        var inputs = File.ReadLines(Path.Combine(_dir, "harmful.jsonl")).Take(2).Select(l =>
        {
            using var d = JsonDocument.Parse(l);
            long[] Ids(string k) => d.RootElement.GetProperty(k).EnumerateArray().Select(e => e.GetInt64()).ToArray();
            return new ProfileInput(Ids("prompt_ids"), Ids("harmful_response_ids"));
        }).ToList();
        using (var aligned = CausalLanguageModel.FromPretrained(Path.Combine(Pair, "aligned")))
        {
            var direct = GradientSignalProbe.Run(aligned, inputs, new GradientProbeOptions { MaxPositions = 9, MaxSequences = 2 }).MeanNorms;
            direct.Should().HaveCount(6); // the harmful references have 6 tokens
            norms.Should().HaveCount(direct.Count);
            // float32 arithmetic: the two runs may sum in a different order (thread count), so the bound is relative.
            for (int i = 0; i < norms.Length; i++) norms[i].Should().BeApproximately(direct[i], 1e-6 * Math.Max(1, Math.Abs(direct[i])), $"n_{i + 1}");
        }

        var (code2, stdout2, err2) = Run(Args("targeted-completion", "q", "--probe-norms", file));
        code2.Should().Be(0, err2);
        var (a, b) = (Losses(stdout), Losses(stdout2));
        a.Should().HaveCount(2);
        b.Should().Equal(a);

        // The probe's weights matter: the ramp gives another loss (the penalty differs).
        var (code3, stdout3, err3) = Run(Args("targeted-completion", "r"));
        code3.Should().Be(0, err3);
        Losses(stdout3).Should().NotEqual(a);
    }

    [Fact]
    public void Probe_with_probe_norms_is_a_usage_error()
    {
        var (code, _, err) = Run(Args("targeted-completion", "x", "--probe", "2", "--probe-norms", Path.Combine(_dir, "none.json")));
        code.Should().Be(2);
        err.Trim().Should().Contain("--probe").And.Contain("--probe-norms").And.NotContain("\n");
        Directory.Exists(Path.Combine(_dir, "x")).Should().BeFalse();
    }
}
