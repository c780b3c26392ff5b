using DeepAlign.Tests.Support;
using System.Diagnostics;
using System.Text.Json;
using DeepAlign.Text;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>The tokenize and chat-format commands of the deepalign sample, run as a process.</summary>
public sealed class CliTextCommandsTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.AsProcess(args);

    [Fact]
    public void Tokenize_Json_PrintsIdsAndTokens_WithoutBosByDefault()
    {
        var dir = TextTestAssets.ModelDir("llama2");
        var (code, output, _) = Run("tokenize", "--model", dir, "--text", "Hello</s>", "--json");
        code.Should().Be(0);
        using var doc = JsonDocument.Parse(output);
        var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        ids.Should().Equal(TextTestAssets.Tokenizer("llama2").Encode("Hello</s>"));
        ids.Should().EndWith(2).And.NotContain(1);
        doc.RootElement.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()).Should().Equal("▁Hello", "</s>");
        var (code2, output2, _) = Run("tokenize", "--model", dir, "--text", "Hello", "--json", "--add-special-tokens");
        code2.Should().Be(0);
        JsonDocument.Parse(output2).RootElement.GetProperty("ids")[0].GetInt32().Should().Be(1);
    }

    [Fact]
    public void ChatFormat_RendersTheTemplate_AndErrorsUseExitCodes()
    {
        var dir = TextTestAssets.ModelDir("qwen3");
        var (code, output, _) = Run("chat-format", "--model", dir, "--system", "S", "--user", "U", "--assistant-prefix", "Sure");
        code.Should().Be(0);
        output.Should().Be("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nSure");
        var (bad, _, err) = Run("chat-format", "--model", dir, "--format", "vicuna", "--user", "U");
        bad.Should().Be(2);
        err.Should().Contain("vicuna");
        var (missing, _, err2) = Run("tokenize", "--model", "/no/such/model", "--text", "x");
        missing.Should().Be(1);
        err2.Should().Contain("/no/such/model");
    }
}
