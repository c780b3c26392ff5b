using System.Text;
using DeepAlign.Core.Tests.Text;
using DeepAlign.Hosting;
using DeepAlign.Testing;
using DeepAlign.Text;
using FluentAssertions;
using Microsoft.Extensions.AI;
using Xunit;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DeepAlign.Tests.Hosting;

/// <summary>
/// Streaming through a byte-level BPE tokenizer (Qwen3's, npm-fetched) with a table model scripted to answer text whose
/// characters span several byte tokens: no delta may carry a broken UTF-8 sequence, and the deltas must add up to the text.
/// </summary>
public sealed class ChatClientStreamingUtf8Tests
{
    [Fact]
    public async Task Streamed_deltas_are_whole_characters_and_add_up_to_the_answer()
    {
        var tokenizer = TextTestAssets.Tokenizer("qwen3");
        var template = ChatTemplate.For(tokenizer, ChatFormat.ChatML);
        const string answer = "Grüße 🫠 naïve 日本語 🧪!";
        int endOfTurn = tokenizer.TokenToId("<|im_end|>")!.Value;
        var script = tokenizer.Encode(answer).Append(endOfTurn).ToArray();

        // Prompt length from the hand-written ChatML rendering; the model then plays the script token by token.
        int promptLength = tokenizer.Encode("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n").Count;
        var model = TableCausalLanguageModel.CreateBuilder(tokenizer.VocabSize)
            .Otherwise(context =>
            {
                int j = context.Count - promptLength;
                if (j < 0 || j >= script.Length) return null;
                var logits = new float[tokenizer.VocabSize];
                logits[script[j]] = 20f;
                return logits;
            })
            .WithSpecialTokens(eos: new[] { endOfTurn })
            .Build();
        using var client = DeepAlignChatClient.Create(model, tokenizer, template);
        var messages = new[] { new AIChatMessage(ChatRole.User, "hello") };

        var strict = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        var deltas = new List<string>();
        await foreach (var update in client.GetStreamingResponseAsync(messages))
            if (update.Text.Length > 0)
            {
                update.Text.Should().NotContain("\uFFFD");
                FluentActions.Invoking(() => strict.GetBytes(update.Text)).Should().NotThrow("a delta must be valid UTF-8 on its own");
                deltas.Add(update.Text);
            }

        string.Concat(deltas).Should().Be(answer);
        deltas.Count.Should().BeLessThan(script.Length - 1, "byte tokens of a split character are held back until it is complete");
        deltas.Should().Contain(d => d.Contains("🫠"));
        (await client.GetResponseAsync(messages)).Text.Should().Be(answer);
    }
}
