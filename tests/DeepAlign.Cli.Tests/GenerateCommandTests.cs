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

/// <summary><c>deepalign generate</c> in process, on a tiny random Llama folder with the word-level organism tokenizer.</summary>
public class GenerateCommandTests
{
    public GenerateCommandTests() => torch.set_num_threads(1);

    private static readonly long[] ChatPromptIds = { 2, 4, 7, 8, 9, 13, 10, 11, 12, 3, 2, 5 }; // ChatML "sort the list : 3 1 2"

    private static string Folder(TempDir dir, string name, long seed)
    {
        var config = TinyModelFactory.LlamaConfig(vocabSize: 24, initializerRange: 0.2) with { EosTokenIds = new[] { 3 }, BosTokenId = null };
        var folder = TinyModelFactory.SaveFolder(Path.Combine(dir.Path, name), config, seed);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(TextTestAssets.FixturePath(Path.Combine("wordlevel", f)), Path.Combine(folder, f));
        return folder;
    }

    private static (int Code, string Out, string Err) Run(params string[] args) =>
        CliRunner.InProcess(new Command[] { GenerateCommand.Create(), DecodeCommand.Create() }, args);

    private static long[] Ids(JsonNode json, string field) => json[field]!.AsArray().Select(n => (long)n!).ToArray();

    [Fact]
    public void Text_prompt_is_chat_rendered_and_greedy_output_equals_the_library_generator()
    {
        using var dir = new TempDir();
        var model = Folder(dir, "m", seed: 3);
        var (code, output, err) = Run("generate", "--model", model, "--prompt", "sort the list : 3 1 2", "--max-new-tokens", "10", "--device", "cpu", "--json");
        code.Should().Be(0, err);
        var json = JsonNode.Parse(output)!;
        Ids(json, "prompt_ids").Should().Equal(ChatPromptIds);

        using var lm = CausalLanguageModel.FromPretrained(model, torch.CPU);
        using var plain = new Generator(lm, vocabSize: 21);
        var expected = plain.Generate(new[] { new GenerationRequest(ChatPromptIds) }, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = new long[] { 3 } }).Single();
        Ids(json, "generated_ids").Should().Equal(expected.GeneratedIds);
        json["text"].Should().NotBeNull();
    }

    [Theory]
    [InlineData("w8a8", "auto")]
    [InlineData("int8", "float32")]
    public void Quantize_and_dtype_auto_load_and_convert_as_the_library_does(string quantize, string dtype)
    {
        using var dir = new TempDir();
        var model = Folder(dir, "m", seed: 3);
        var (code, output, err) = Run("generate", "--model", model, "--prompt-ids", "2 4 7 8", "--max-new-tokens", "6", "--device", "cpu",
            "--quantize", quantize, "--dtype", dtype, "--json");
        code.Should().Be(0, err);
        var json = JsonNode.Parse(output)!;

        using var lm = CausalLanguageModel.FromPretrained(model, torch.CPU, CausalLanguageModel.ParseDType(dtype, torch.CPU));
        lm.DType.Should().Be(dtype == "auto" ? DeepAlign.Runtime.InferencePrecision.DefaultFor(torch.CPU)!.Value : torch.ScalarType.Float32);
        DeepAlign.Models.Quantization.ModelQuantization.Quantize(lm, DeepAlign.Models.Quantization.QuantizationOptions.Parse(quantize));
        using var plain = new Generator(lm, vocabSize: 21);
        var expected = plain.Generate(new[] { new GenerationRequest(new long[] { 2, 4, 7, 8 }) }, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = new long[] { 3 } }).Single();
        Ids(json, "generated_ids").Should().Equal(expected.GeneratedIds);
    }

    [Fact]
    public void Unknown_quantization_is_a_usage_error()
    {
        using var dir = new TempDir();
        var model = Folder(dir, "m", seed: 3);
        var (code, _, err) = Run("generate", "--model", model, "--prompt-ids", "2 4", "--device", "cpu", "--quantize", "int4");
        code.Should().Be(2);
        err.Should().Contain("int4");
    }

    [Fact]
    public void Seeded_sampling_with_a_prefix_matches_contrastive_decoding_at_alpha_zero_beta_zero()
    {
        using var dir = new TempDir();
        var aligned = Folder(dir, "aligned", seed: 5);
        var baseDir = Folder(dir, "base", seed: 6);
        string[] common = { "--prompt", "sort the list : 3 1 2", "--prefix", "sure", "--max-new-tokens", "8", "--temperature", "0.9", "--top-p", "0.6", "--seed", "11", "--json" };
        var (code, plainOut, err) = Run(new[] { "generate", "--model", aligned }.Concat(common).ToArray());
        code.Should().Be(0, err);
        var (code2, cdOut, err2) = Run(new[] { "decode", "--aligned", aligned, "--base", baseDir, "--alpha", "0", "--beta", "0" }.Concat(common).ToArray());
        code2.Should().Be(0, err2);
        var plain = JsonNode.Parse(plainOut)!;
        var cd = JsonNode.Parse(cdOut)!;
        Ids(plain, "prefix_ids").Should().NotBeEmpty();
        Ids(cd, "generated_ids").Should().Equal(Ids(plain, "generated_ids"));
    }

    [Fact]
    public void Token_ids_in_and_out_work_without_a_tokenizer_and_usage_errors_exit_2()
    {
        using var dir = new TempDir();
        var config = TinyModelFactory.LlamaConfig(vocabSize: 24);
        var model = TinyModelFactory.SaveFolder(Path.Combine(dir.Path, "bare"), config, seed: 1);
        var (code, output, err) = Run("generate", "--model", model, "--prompt-ids", "1,2,3", "--max-new-tokens", "4");
        code.Should().Be(0, err);
        output.Trim().Split(' ').Should().HaveCount(4);

        Run("generate", "--model", model, "--prompt", "hello").Code.Should().Be(2, "text needs a tokenizer");
        Run("generate", "--model", model, "--prompt-ids", "1", "--top-p", "1.5").Code.Should().Be(2);
        Run("generate", "--model", Path.Combine(dir.Path, "missing"), "--prompt-ids", "1").Code.Should().Be(1);
    }
}
