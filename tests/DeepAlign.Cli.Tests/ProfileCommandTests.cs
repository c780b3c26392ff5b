using System.CommandLine;
using System.Text.Json;
using DeepAlign.Cli.Commands;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Testing;
using FluentAssertions;
using Xunit;
using DeepAlign.Tests.Support;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>The <c>deepalign profile</c> command end to end on tiny saved model folders.</summary>
public class ProfileCommandTests
{
    private static int Run(params string[] args)
    {
        var root = new RootCommand { ProfileCommand.Create() };
        var parse = root.Parse(["profile", .. args]);
        return parse.Errors.Count > 0 ? 2 : parse.Invoke();
    }

    [Fact]
    public void Writes_the_report_and_reports_errors_with_exit_codes()
    {
        using var dir = new TempDir();
        var config = TinyModelFactory.LlamaConfig(vocabSize: 40, hiddenSize: 32, layers: 2, intermediateSize: 64, initializerRange: 0.2);
        TinyModelFactory.SaveFolder(dir.File("base"), config, seed: 1);
        TinyModelFactory.SaveFolder(dir.File("aligned"), config, seed: 2);
        File.WriteAllLines(dir.File("in.jsonl"),
        [
            """{"id": "a", "prompt_ids": [1, 5, 6], "response_ids": [7, 8, 9, 10]}""",
            """{"id": "b", "prompt_ids": [1, 5], "response_ids": [11, 12]}""",
            """{"id": "c", "prompt_ids": [1, 9, 9, 9, 9], "harmful_response_ids": [3, 4, 5]}""",
        ]);
        string outDir = dir.File("out");
        Run("--base", dir.File("base"), "--aligned", dir.File("aligned"), "--input", dir.File("in.jsonl"), "--output", outDir,
            "--batch-size", "2", "--probe", "2", "--json").Should().Be(0);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "profile.json")));
        doc.RootElement.GetProperty("totals").GetProperty("sequences").GetInt32().Should().Be(3);
        doc.RootElement.GetProperty("totals").GetProperty("tokens").GetInt32().Should().Be(9);
        doc.RootElement.GetProperty("gradient_probe").GetProperty("sequences").GetInt32().Should().Be(2);
        File.ReadAllLines(Path.Combine(outDir, "sequences.jsonl")).Should().HaveCount(3);
        File.Exists(Path.Combine(outDir, "grad_norm.png")).Should().BeTrue();

        Run("--base", dir.File("base"), "--aligned", dir.File("aligned"), "--input", dir.File("in.jsonl"), "--output", outDir,
            "--generate-prefix", "1", "--max-new-tokens", "3", "--probe", "0").Should().Be(0);
        using var gen = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "profile.json")));
        gen.RootElement.GetProperty("mode").GetString().Should().Be("generated");
        // The plots come from DeepAlign.Reporting; profile.md links the ones this run wrote (no probe: no grad_norm,
        // although the first run's grad_norm.png is still in the folder).
        MarkdownLinks.Plots(File.ReadAllText(Path.Combine(outDir, "profile.md")))
            .Should().Equal("kl.png", "kl.svg", "u.png", "u.svg", "bf_rate.png", "bf_rate.svg");

        Run("--base", dir.File("base"), "--aligned", dir.File("aligned"), "--input", dir.File("in.jsonl"), "--output", outDir, "--tau", "-1").Should().Be(2);
        Run("--base", dir.File("base"), "--aligned", dir.File("aligned"), "--input", dir.File("missing.jsonl"), "--output", outDir).Should().Be(1);
        Run("--base", dir.File("base"), "--input", dir.File("in.jsonl"), "--output", outDir).Should().Be(2);
    }
}
