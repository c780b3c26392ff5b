using DeepAlign.Tests.Support;
using System.Diagnostics;
using System.Text.Json;
using DeepAlign.Models;
using DeepAlign.Training;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Cli;

/// <summary>Runs <c>deepalign train</c> as a process.</summary>
public sealed class TrainCommandTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "deepalign-cli-train-" + Guid.NewGuid().ToString("N"));
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");

    public void Dispose()
    {
        try { Directory.Delete(_out, true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.AsProcess(args);

    [Fact]
    public void Lora_sft_run_writes_a_loadable_model_an_adapter_and_checkpoints_and_a_rerun_resumes()
    {
        string model = Path.Combine(Fixtures, "models", "llama_gqa");
        string[] args = { "train", "--model", model, "--objective", "sft",
            "--data", Path.Combine(Fixtures, "training", "sft_llama", "data.jsonl"), Path.Combine(Fixtures, "training", "sft", "data.jsonl"),
            "--mix", "1:2", "--output", _out, "--steps", "2", "--batch-size", "2", "--lora", "--lora-rank", "2", "--json" };
        var (code, stdout, err) = Run(args);
        code.Should().Be(0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(3);
        using (var step = JsonDocument.Parse(lines[0])) step.RootElement.GetProperty("terms").GetProperty("ce").GetDouble().Should().BePositive();
        File.Exists(Path.Combine(_out, "adapter", "adapter_config.json")).Should().BeTrue();
        TrainingCheckpoints.FindLatest(Path.Combine(_out, "checkpoints")).Should().EndWith("checkpoint-000002");
        using (var m = CausalLanguageModel.FromPretrained(_out)) m.Config.NumHiddenLayers.Should().Be(2);

        var (code2, stdout2, err2) = Run(args);
        code2.Should().Be(0, err2);
        using var summary = JsonDocument.Parse(stdout2.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
        summary.RootElement.GetProperty("resumed_from").GetInt64().Should().Be(2);
    }

    [Fact]
    public void Usage_errors_exit_with_2_and_one_line()
    {
        var (code, _, err) = Run("train", "--model", Path.Combine(Fixtures, "models", "llama_gqa"), "--data", "x.jsonl", "--output", _out, "--objective", "nope");
        code.Should().Be(2);
        err.Trim().Should().Contain("Unknown objective 'nope'").And.NotContain("\n");
    }
}
