using DeepAlign.Tests.Support;
using System.CommandLine;
using System.Text.Json.Nodes;
using DeepAlign.Cli.Commands;
using DeepAlign.Core.Tests.Text;
using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Testing;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Generator = DeepAlign.Generation.Generator;

namespace DeepAlign.Tests.Cli;

/// <summary><c>deepalign decode</c> in process, on two tiny random Llama folders sharing the word-level organism tokenizer.</summary>
public class DecodeCommandTests
{
    public DecodeCommandTests() => torch.set_num_threads(1);

    private static readonly long[] ChatPromptIds = { 2, 4, 7, 8, 9, 13, 10, 11, 12, 3, 2, 5 }; // ChatML "sort the list : 3 1 2"

    private static (string Aligned, string Base) Folders(TempDir dir)
    {
        // Logits are 24 wide; the tokenizer has 21 ids, so the decoder cuts both models to 21. Eos = <|im_end|> (3).
        var config = TinyModelFactory.LlamaConfig(vocabSize: 24, initializerRange: 0.2) with { EosTokenIds = new[] { 3 }, BosTokenId = null };
        var aligned = TinyModelFactory.SaveFolder(Path.Combine(dir.Path, "aligned"), config, seed: 3);
        var baseDir = TinyModelFactory.SaveFolder(Path.Combine(dir.Path, "base"), config, seed: 4);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(TextTestAssets.FixturePath(Path.Combine("wordlevel", f)), Path.Combine(aligned, f));
        return (aligned, baseDir);
    }

    private static (int Code, string Out, string Err) Run(params string[] args) =>
        CliRunner.InProcess(new Command[] { DecodeCommand.Create() }, args);

    [Fact]
    public void Alpha_zero_beta_zero_prints_the_aligned_models_own_greedy_decoding()
    {
        using var dir = new TempDir();
        var (aligned, baseDir) = Folders(dir);
        var (code, output, err) = Run("decode", "--base", baseDir, "--aligned", aligned, "--alpha", "0", "--beta", "0",
            "--prompt", "sort the list : 3 1 2", "--max-new-tokens", "10", "--device", "cpu", "--json");
        code.Should().Be(0, err);
        var json = JsonNode.Parse(output)!;
        json["prompt_ids"]!.AsArray().Select(n => (long)n!).Should().Equal(ChatPromptIds);

        using var model = CausalLanguageModel.FromPretrained(aligned, torch.CPU);
        using var plain = new Generator(model, vocabSize: 21);
        var expected = plain.Generate(new[] { new GenerationRequest(ChatPromptIds) }, new GenerationOptions { MaxNewTokens = 10 }).Single();
        json["generated_ids"]!.AsArray().Select(n => (long)n!).Should().Equal(expected.GeneratedIds);
        json["generated_ids"]!.AsArray().Should().OnlyContain(n => (long)n! < 21, "scores are cut to the tokenizer's vocabulary");
        json["text"]!.GetValue<string>().Should().NotBeNull();
    }

    [Fact]
    public void Trace_with_a_ramp_and_a_forced_prefix_counts_prefix_positions()
    {
        using var dir = new TempDir();
        var (aligned, baseDir) = Folders(dir);
        var (code, output, err) = Run("decode", "--base", baseDir, "--aligned", aligned, "--schedule", "ramp", "--rule", "base-favored",
            "--prompt", "sort the list : 3 1 2", "--prefix", "I can't", "--max-new-tokens", "4", "--sample", "--seed", "1", "--trace", "--json");
        code.Should().Be(0, err);
        var json = JsonNode.Parse(output)!;
        json["prefix_ids"]!.AsArray().Select(n => (long)n!).Should().Equal(15L, 16L);
        var trace = json["trace"]!.AsArray();
        trace.Should().HaveCount(json["generated_ids"]!.AsArray().Count);
        trace[0]!["position"]!.GetValue<int>().Should().Be(3);
        // Ramp defaults: alpha_j = 0.5 + 1.5 min(1, (j - 1) / 32).
        for (int t = 0; t < trace.Count; t++)
        {
            int j = trace[t]!["position"]!.GetValue<int>();
            trace[t]!["alpha"]!.GetValue<double>().Should().BeApproximately(0.5 + 1.5 * Math.Min(1, (j - 1) / 32.0), 1e-6);
            trace[t]!["token"]!.GetValue<long>().Should().Be((long)json["generated_ids"]![t]!);
        }

        var (textCode, text, _) = Run("decode", "--base", baseDir, "--aligned", aligned, "--prompt-ids", "2 4 7 8 9 13 10 11 12 3 2 5",
            "--max-new-tokens", "3", "--trace");
        textCode.Should().Be(0);
        text.Should().Contain("KL(a||b)");
    }

    [Fact]
    public void Usage_errors_exit_with_2()
    {
        using var dir = new TempDir();
        var (aligned, baseDir) = Folders(dir);
        Run("decode", "--base", baseDir, "--aligned", aligned, "--prompt", "x", "--prompt-ids", "1").Code.Should().Be(2);
        var (code, _, err) = Run("decode", "--base", baseDir, "--aligned", aligned, "--prompt", "x", "--rule", "half");
        code.Should().Be(2);
        err.Should().Contain("--rule");
        Run("decode", "--base", baseDir, "--aligned", aligned, "--prompt-ids", "1,x").Code.Should().Be(2);
        Run("decode", "--base", baseDir, "--aligned", aligned, "--prompt", "x", "--beta", "3").Code.Should().Be(2);
    }
}
