using DeepAlign.Tests.Support;
using System.Diagnostics;
using System.Text.Json;
using DeepAlign.Checkpoints;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using Xunit;
using DeepAlign.Text;
using static DeepAlign.Tests.Models.ModelTestUtil;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Cli;

/// <summary>Runs the built <c>deepalign</c> tool as a process (inspect and score).</summary>
public class ModelCommandsTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.AsProcess(args);

    [Fact]
    public void Score_writes_log_probabilities_that_match_the_reference_logits()
    {
        using var dir = new TempDir();
        using var expected = SafetensorsFile.Open(ExpectedFile("llama_gqa"));
        using var ids = expected.Load("input_ids");
        using var logits = expected.Load("logits");
        var row = ids[0].data<long>().ToArray();
        File.WriteAllText(dir.File("in.jsonl"), JsonSerializer.Serialize(new { ids = row }) + "\n\n" + JsonSerializer.Serialize(new { ids = row.Take(3) }) + "\n");

        var (code, _, err) = Run("score", "--model", FixtureDir("llama_gqa"), "--input", dir.File("in.jsonl"), "--output", dir.File("out.jsonl"));
        code.Should().Be(0, err);
        var lines = File.ReadAllLines(dir.File("out.jsonl"));
        lines.Should().HaveCount(2);
        using var doc = JsonDocument.Parse(lines[0]);
        doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(row);
        var lp = doc.RootElement.GetProperty("logprobs").EnumerateArray().ToArray();
        lp.Should().HaveCount(row.Length);
        lp[0].ValueKind.Should().Be(JsonValueKind.Null);
        using var reference = logits[0].log_softmax(-1);
        for (int i = 1; i < row.Length; i++)
            lp[i].GetDouble().Should().BeApproximately(reference[i - 1, row[i]].item<float>(), 2e-4, $"position {i}");
        using var doc2 = JsonDocument.Parse(lines[1]);
        doc2.RootElement.GetProperty("logprobs")[2].GetDouble().Should().BeApproximately(lp[2].GetDouble(), 1e-5);
    }

    [Fact]
    public void Score_renders_dataset_lines_with_the_chat_template_and_appends_the_end_of_turn_token()
    {
        using var dir = new TempDir();
        var config = DeepAlign.Testing.TinyModelFactory.LlamaConfig(vocabSize: 24) with { EosTokenIds = new[] { 3 }, BosTokenId = null };
        var model = DeepAlign.Testing.TinyModelFactory.SaveFolder(dir.File("m"), config, seed: 2);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(DeepAlign.Core.Tests.Text.TextTestAssets.FixturePath(Path.Combine("wordlevel", f)), Path.Combine(model, f));
        var tokenizer = DeepAlign.Text.HfTokenizer.FromPretrained(model);
        long[] prompt = { 2, 4, 7, 8, 9, 13, 10, 11, 12, 3, 2, 5 }; // ChatML "sort the list : 3 1 2" + assistant header
        long[] expectedIds = prompt.Concat(tokenizer.Encode("1 2 3").Select(i => (long)i)).Append(3L).ToArray();
        File.WriteAllText(dir.File("in.jsonl"),
            "{\"prompt\": \"sort the list : 3 1 2\", \"response\": \"1 2 3\", \"extra\": 1}\n" + JsonSerializer.Serialize(new { ids = expectedIds }) + "\n");

        var (code, _, err) = Run("score", "--model", model, "--input", dir.File("in.jsonl"), "--output", dir.File("out.jsonl"));
        code.Should().Be(0, err);
        var lines = File.ReadAllLines(dir.File("out.jsonl"));
        using var fromText = JsonDocument.Parse(lines[0]);
        using var fromIds = JsonDocument.Parse(lines[1]);
        fromText.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(expectedIds);
        fromText.RootElement.GetProperty("logprobs").ToString().Should().Be(fromIds.RootElement.GetProperty("logprobs").ToString());
    }

    [Fact]
    public void Score_reports_bad_lines_with_file_and_line_number()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("in.jsonl"), "{\"ids\": [1, 2]}\n{\"ids\": [1, 999]}\n");
        var (code, _, err) = Run("score", "--model", FixtureDir("llama_gqa"), "--input", dir.File("in.jsonl"), "--output", dir.File("out.jsonl"));
        code.Should().Be(1);
        err.Should().Contain("in.jsonl:2:").And.Contain("999");
        File.Exists(dir.File("out.jsonl")).Should().BeFalse();

        var usage = Run("score", "--input", dir.File("in.jsonl"));
        usage.Code.Should().Be(2);
    }

    [Fact]
    public void Inspect_reports_family_dtype_and_parameter_count()
    {
        var (code, stdout, err) = Run("inspect", "--model", FixtureDir("llama_bf16"), "--json");
        code.Should().Be(0, err);
        using var doc = JsonDocument.Parse(stdout);
        doc.RootElement.GetProperty("family").GetString().Should().Be("llama");
        doc.RootElement.GetProperty("dtype").GetString().Should().Be("BF16");
        using var ckpt = SafetensorsCheckpoint.Open(FixtureDir("llama_bf16"));
        long count = ckpt.TensorNames.Sum(n => ckpt.GetInfo(n).ElementCount);
        doc.RootElement.GetProperty("parameters").GetInt64().Should().Be(count);
        doc.RootElement.GetProperty("config").GetProperty("hidden_size").GetInt32().Should().Be(64);

        var missing = Run("inspect", "--model", "/nonexistent/model");
        missing.Code.Should().Be(1);
        missing.Err.Trim().Split('\n').Should().HaveCount(1);
    }
}
