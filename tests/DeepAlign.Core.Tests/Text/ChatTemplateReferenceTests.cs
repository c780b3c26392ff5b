using System.Text.Json;
using DeepAlign.Text;
using DeepAlign.Text.Jinja;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>Chat rendering against @huggingface/jinja (fixture from tests/scripts/text/make-chat-fixtures.mjs), byte for byte.</summary>
public sealed class ChatTemplateReferenceTests
{
    private static readonly Lazy<JsonDocument> Reference = new(() => TextTestAssets.Fixture("chat-reference.json"));

    private static string TemplateText(string name) => name switch
    {
        "npm:llama3" => TextTestAssets.Tokenizer("llama3").ChatTemplate!,
        "npm:qwen3" => TextTestAssets.Tokenizer("qwen3").ChatTemplate!,
        _ => ChatFormats.TemplateText(ChatFormats.Parse(name)),
    };

    [Fact]
    public void BuiltInTemplates_HaveTheRecordedSha256()
    {
        var expected = new Dictionary<ChatFormat, string>
        {
            [ChatFormat.Llama2] = "e8d5b5a546d3f19df16a5320c614fab05bdc4edd50e850f1afd947b503ea41cf",
            [ChatFormat.Llama3] = "ba03a121d097859c7b5b9cd03af99aafe95275210d2876f642ad9929a150f122",
            [ChatFormat.Llama31] = "e10ca381b1ccc5cf9db52e371f3b6651576caee0a630b452e2816b2d404d4b65",
            [ChatFormat.ChatML] = "153280e3ff55d19da1398bdb3914ee2a51b80429bfaedde11d7d216c39db80f3",
            [ChatFormat.Qwen2] = "793202280c0910ab26bc6eb57c8212c2417324c6d8c4efd0d10d59092ab3e3eb",
            [ChatFormat.Qwen25] = "cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f",
            [ChatFormat.Qwen3] = "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5",
        };
        foreach (var (format, sha) in expected)
            ChatFormats.Sha256(ChatFormats.TemplateText(format)).Should().Be(sha, format.ToString());
        // The fixture was rendered from the same texts.
        foreach (var p in Reference.Value.RootElement.GetProperty("templateSha256").EnumerateObject())
            ChatFormats.Sha256(TemplateText(p.Name)).Should().Be(p.Value.GetString(), p.Name);
    }

    [Fact]
    public void Render_MatchesJinjaReference_ByteForByte()
    {
        var failures = new List<string>();
        var count = 0;
        foreach (var c in Reference.Value.RootElement.GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("template").GetString()!;
            var template = new ChatTemplate(TemplateText(name), c.GetProperty("bos_token").GetString(), c.GetProperty("eos_token").GetString());
            var messages = c.GetProperty("messages").EnumerateArray()
                .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
            var extra = c.GetProperty("extra");
            var options = new ChatTemplateOptions
            {
                AddGenerationPrompt = c.GetProperty("add_generation_prompt").GetBoolean(),
                DateString = extra.TryGetProperty("date_string", out var ds) ? ds.GetString() : null,
                ExtraVariables = extra.TryGetProperty("enable_thinking", out var et) ? new Dictionary<string, object?> { ["enable_thinking"] = et.GetBoolean() } : null,
            };
            var label = $"{name}/{c.GetProperty("conversation").GetString()}/agp={options.AddGenerationPrompt}/{extra}";
            count++;
            if (c.TryGetProperty("error", out var err))
            {
                var act = () => template.Render(messages, options);
                try { act(); failures.Add($"{label}: expected an error like '{err.GetString()}'"); }
                catch (JinjaException e) when (e.Message.Contains(err.GetString()!, StringComparison.Ordinal)) { }
                catch (Exception e) { failures.Add($"{label}: wrong exception {e.GetType().Name}: {e.Message}"); }
                continue;
            }
            var expected = c.GetProperty("expected").GetString()!;
            try
            {
                var actual = template.Render(messages, options);
                if (actual != expected) failures.Add($"{label}:\n  expected {JsonSerializer.Serialize(expected)}\n  actual   {JsonSerializer.Serialize(actual)}");
            }
            catch (Exception e) { failures.Add($"{label}: threw {e.GetType().Name}: {e.Message}"); }
        }
        count.Should().BeGreaterThan(150);
        failures.Should().BeEmpty();
    }

    [Fact]
    public void AssistantPrefix_IsAppendedVerbatimAfterTheGenerationPrompt()
    {
        var t = new ChatTemplate(ChatFormats.TemplateText(ChatFormat.Llama3), "<|begin_of_text|>", "<|eot_id|>");
        var msgs = new[] { ChatMessage.User("Hi") };
        var plain = t.Render(msgs);
        t.Render(msgs, new ChatTemplateOptions { AssistantPrefix = "Sure, here" }).Should().Be(plain + "Sure, here");
        plain.Should().EndWith("<|start_header_id|>assistant<|end_header_id|>\n\n");
        var bad = () => t.Render(msgs, new ChatTemplateOptions { AddGenerationPrompt = false, AssistantPrefix = "x" });
        bad.Should().Throw<ArgumentException>().WithMessage("*AssistantPrefix*");
    }

    [Fact]
    public void ChatFormat_Parse_AcceptsNamesAndRejectsUnknown()
    {
        ChatFormats.Parse("llama3.1").Should().Be(ChatFormat.Llama31);
        ChatFormats.Parse("QWEN2.5").Should().Be(ChatFormat.Qwen25);
        ChatFormats.Parse("auto").Should().Be(ChatFormat.Auto);
        var bad = () => ChatFormats.Parse("vicuna");
        bad.Should().Throw<ArgumentException>().WithMessage("*vicuna*llama2*");
        ChatFormats.Identify(ChatFormats.TemplateText(ChatFormat.Qwen3)).Should().Be(ChatFormat.Qwen3);
        ChatFormats.Identify(TextTestAssets.Tokenizer("qwen3").ChatTemplate!).Should().Be(ChatFormat.Qwen3);
        ChatFormats.Identify(TextTestAssets.Tokenizer("llama3").ChatTemplate!).Should().BeNull("the npm Llama-3 template is an older revision");
    }

    [Fact]
    public void ChatTemplateFor_AutoWithoutTemplate_ThrowsNamingTheChoices()
    {
        var act = () => ChatTemplate.For(TextTestAssets.Tokenizer("llama2"));
        act.Should().Throw<InvalidOperationException>().WithMessage("*no chat_template*llama2*");
        ChatTemplate.For(TextTestAssets.Tokenizer("llama2"), ChatFormat.Llama2).EndOfTurnToken.Should().Be("</s>");
        ChatTemplate.For(TextTestAssets.Tokenizer("llama3")).EndOfTurnToken.Should().Be("<|eot_id|>");
        ChatTemplate.For(TextTestAssets.Tokenizer("qwen3")).EndOfTurnToken.Should().Be("<|im_end|>");
    }

    [Fact]
    public void UnsupportedConstructs_ThrowChatTemplateExceptionNamingThemAndTheLine()
    {
        var stmt = () => new JinjaTemplate("{% include 'x.jinja' %}");
        stmt.Should().Throw<ChatTemplateException>().WithMessage("line 1:*include*").Which.Line.Should().Be(1);
        var filter = () => new JinjaTemplate("{{ x | frobnicate }}").Render(new Dictionary<string, object?> { ["x"] = "a" });
        filter.Should().Throw<ChatTemplateException>().WithMessage("line 1:*frobnicate*");
        var test = () => new JinjaTemplate("{{ x is prime }}").Render(new Dictionary<string, object?> { ["x"] = 3 });
        test.Should().Throw<ChatTemplateException>().WithMessage("line 1:*prime*");
    }
}
