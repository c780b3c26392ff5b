using DeepAlign.Generation;
using DeepAlign.Hosting;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using FluentAssertions;
using Microsoft.Extensions.AI;
using Xunit;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DeepAlign.Tests.Hosting;

/// <summary>
/// <see cref="DeepAlignChatClient"/> on the pinned organism pair: every answer is compared with the shared
/// <see cref="Generator"/> run by hand on a prompt rendered from hand-written ChatML (not through the client's template
/// code), so a wrong rendering, option mapping, stop rule or text cut fails.
/// </summary>
public sealed class ChatClientTests : IClassFixture<PinnedPairFixture>
{
    private readonly PinnedPairFixture _pair;

    public ChatClientTests(PinnedPairFixture pair) => _pair = pair;

    private DeepAlignChatClient Plain(DeepAlignChatClientOptions? options = null) =>
        DeepAlignChatClient.Create(_pair.Aligned, _pair.Tokenizer, _pair.Template, options ?? new DeepAlignChatClientOptions { ModelId = "organism-aligned" });

    private static AIChatMessage User(string text) => new(ChatRole.User, text);

    [Fact]
    public async Task Greedy_answer_equals_the_generator_on_the_hand_rendered_prompt()
    {
        using var client = Plain();
        foreach (var prompt in _pair.Benign.Concat(_pair.Harmful))
        {
            var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)));
            var expected = _pair.Reference(new GenerationRequest(promptIds));
            expected.FinishReason.Should().Be(FinishReason.StopToken, "the pinned model ends its answers with <|im_end|>");

            var response = await client.GetResponseAsync(new[] { User(prompt) });

            response.Text.Should().Be(_pair.Decode(expected.GeneratedIds), prompt);
            response.Text.Should().NotBeEmpty().And.NotContain("<|im_end|>");
            response.FinishReason.Should().Be(ChatFinishReason.Stop);
            response.Usage!.InputTokenCount.Should().Be(promptIds.Length);
            response.Usage.OutputTokenCount.Should().Be(expected.GeneratedIds.Count);
            response.Usage.TotalTokenCount.Should().Be(promptIds.Length + expected.GeneratedIds.Count);
            response.ModelId.Should().Be("organism-aligned");
            response.Messages.Should().ContainSingle().Which.Role.Should().Be(ChatRole.Assistant);
        }
    }

    [Fact]
    public async Task Multi_turn_conversation_with_system_and_instructions_is_rendered_as_ChatML()
    {
        using var client = Plain();
        string first = _pair.Benign[0], second = _pair.Benign[1];
        var answer = (await client.GetResponseAsync(new[] { User(first) })).Text;
        var messages = new[]
        {
            new AIChatMessage(ChatRole.System, "you are a helpful assistant ."),
            User(first),
            new AIChatMessage(ChatRole.Assistant, answer),
            User(second),
        };
        var options = new ChatOptions { Instructions = "answer briefly ." };

        var prepared = client.Prepare(messages, options);
        var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(
            ("system", "you are a helpful assistant .\n\nanswer briefly ."), ("user", first), ("assistant", answer), ("user", second)));
        prepared.Request.PromptIds.Should().Equal(promptIds);
        prepared.Request.ForcedPrefixIds.Should().BeEmpty();

        var response = await client.GetResponseAsync(messages, options);
        response.Text.Should().Be(_pair.Decode(_pair.Reference(new GenerationRequest(promptIds)).GeneratedIds));

        // Instructions without a system message become one.
        client.Prepare(new[] { User(first) }, options).Request.PromptIds
            .Should().Equal(_pair.Ids(PinnedPairFixture.ChatMl(("system", "answer briefly ."), ("user", first))));
    }

    [Fact]
    public async Task Streaming_concatenation_equals_the_non_streaming_answer_with_finish_and_usage_last()
    {
        using var client = Plain();
        foreach (var prompt in _pair.Benign.Take(2).Concat(_pair.Harmful.Take(1)))
        {
            var messages = new[] { User(prompt) };
            var whole = await client.GetResponseAsync(messages);
            var updates = new List<ChatResponseUpdate>();
            await foreach (var update in client.GetStreamingResponseAsync(messages)) updates.Add(update);

            var textUpdates = updates.Where(u => u.Contents.OfType<TextContent>().Any()).ToList();
            textUpdates.Count.Should().BeGreaterThan(1, "tokens are streamed one delta at a time");
            string.Concat(textUpdates.Select(u => u.Text)).Should().Be(whole.Text);
            updates.Take(updates.Count - 1).Should().OnlyContain(u => u.FinishReason == null);
            var last = updates[^1];
            last.FinishReason.Should().Be(ChatFinishReason.Stop);
            var usage = last.Contents.OfType<UsageContent>().Should().ContainSingle().Subject.Details;
            usage.InputTokenCount.Should().Be(whole.Usage!.InputTokenCount);
            usage.OutputTokenCount.Should().Be(whole.Usage.OutputTokenCount);
            updates.Select(u => u.ResponseId).Distinct().Should().ContainSingle();
            updates.Should().OnlyContain(u => u.Role == ChatRole.Assistant && u.ModelId == "organism-aligned");

            var merged = updates.ToChatResponse();
            merged.Text.Should().Be(whole.Text);
            merged.FinishReason.Should().Be(ChatFinishReason.Stop);
            merged.Usage!.OutputTokenCount.Should().Be(whole.Usage.OutputTokenCount);
        }
    }

    [Fact]
    public async Task MaxOutputTokens_caps_the_answer_and_reports_Length()
    {
        using var client = Plain();
        var prompt = _pair.Benign[0];
        var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)));
        var full = _pair.Reference(new GenerationRequest(promptIds));
        full.GeneratedIds.Count.Should().BeGreaterThan(3, "the test needs an answer longer than the cap");

        var options = new ChatOptions { MaxOutputTokens = 3 };
        var response = await client.GetResponseAsync(new[] { User(prompt) }, options);
        response.FinishReason.Should().Be(ChatFinishReason.Length);
        response.Usage!.OutputTokenCount.Should().Be(3);
        response.Text.Should().Be(_pair.Decode(full.GeneratedIds.Take(3)));

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(new[] { User(prompt) }, options)) updates.Add(u);
        updates[^1].FinishReason.Should().Be(ChatFinishReason.Length);
        string.Concat(updates.Select(u => u.Text)).Should().Be(response.Text);

        // The client default applies when the request sets none.
        using var capped = Plain(new DeepAlignChatClientOptions { DefaultMaxOutputTokens = 2 });
        (await capped.GetResponseAsync(new[] { User(prompt) })).Usage!.OutputTokenCount.Should().Be(2);
    }

    [Fact]
    public async Task Stop_sequence_cuts_the_text_before_it_and_stops_generation()
    {
        using var client = Plain();
        var prompt = _pair.Benign.First(p =>
        {
            var words = _pair.Decode(_pair.Reference(new GenerationRequest(_pair.Ids(PinnedPairFixture.ChatMl(("user", p))))).GeneratedIds)
                .Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return words.Length >= 4;
        });
        var full = (await client.GetResponseAsync(new[] { User(prompt) })).Text;
        var words = full.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string stop = " " + words[2];
        int cut = full.IndexOf(stop, StringComparison.Ordinal);
        cut.Should().BeGreaterThan(0);

        var options = new ChatOptions { StopSequences = new[] { stop } };
        var response = await client.GetResponseAsync(new[] { User(prompt) }, options);
        response.Text.Should().Be(full[..cut]);
        response.FinishReason.Should().Be(ChatFinishReason.Stop);
        response.Usage!.OutputTokenCount.Should().BeLessThan((await client.GetResponseAsync(new[] { User(prompt) })).Usage!.OutputTokenCount!.Value,
            "generation stops once the stop string is complete");
        response.RawRepresentation.Should().BeOfType<TextGenerationResult>().Which.FinishReason.Should().Be(FinishReason.StopCondition);

        var streamed = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(new[] { User(prompt) }, options)) streamed.Add(u);
        string.Concat(streamed.Select(u => u.Text)).Should().Be(full[..cut], "the stop string itself is never streamed");
        streamed[^1].FinishReason.Should().Be(ChatFinishReason.Stop);
    }

    [Fact]
    public async Task Seeded_sampling_matches_the_generator_and_is_reproducible()
    {
        using var client = Plain();
        var prompt = _pair.Benign[1];
        var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)));
        var messages = new[] { User(prompt) };

        var options = new ChatOptions { Temperature = 3f, TopP = 0.95f, TopK = 50, Seed = 1234 };
        var expected = _pair.Reference(new GenerationRequest(promptIds),
            new GenerationOptions { MaxNewTokens = 256, DoSample = true, Temperature = 3.0, TopP = 0.95f, TopK = 50, Seed = 1234 });
        var a = await client.GetResponseAsync(messages, options);
        var b = await client.GetResponseAsync(messages, options);
        a.Text.Should().Be(_pair.Decode(expected.GeneratedIds));
        b.Text.Should().Be(a.Text, "the same seed gives the same draws");

        var streamed = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, options)) streamed.Add(u);
        string.Concat(streamed.Select(u => u.Text)).Should().Be(a.Text);

        var texts = new HashSet<string>();
        for (int seed = 0; seed < 6; seed++)
            texts.Add((await client.GetResponseAsync(messages, new ChatOptions { Temperature = 3f, Seed = seed })).Text);
        texts.Count.Should().BeGreaterThan(1, "a hot temperature with different seeds must sample different answers");

        // Top-k 1 sampling keeps only the argmax: it must equal greedy decoding, whatever the seed.
        var greedy = (await client.GetResponseAsync(messages)).Text;
        (await client.GetResponseAsync(messages, new ChatOptions { TopK = 1, Seed = 7 })).Text.Should().Be(greedy);
        (await client.GetResponseAsync(messages, new ChatOptions { Temperature = 0f, Seed = 7 })).Text.Should().Be(greedy);
    }

    [Fact]
    public async Task Trailing_assistant_message_is_a_forced_response_prefix()
    {
        using var client = Plain();
        var prompt = _pair.Harmful[0];
        string prefix = "sure , here is how to";
        var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)));
        var prefixIds = _pair.Ids(prefix);
        var expected = _pair.Reference(GenerationRequest.WithPrefix(promptIds, prefixIds));

        var messages = new[] { User(prompt), new AIChatMessage(ChatRole.Assistant, prefix) };
        var response = await client.GetResponseAsync(messages);
        response.Text.Should().Be(TextGenerator.ContinuationText(_pair.Tokenizer, prefixIds, expected.GeneratedIds, true));
        response.Text.Should().NotStartWith("sure");
        response.Usage!.InputTokenCount.Should().Be(promptIds.Length + prefixIds.Length);
        response.Usage.OutputTokenCount.Should().Be(expected.GeneratedIds.Count);

        var streamed = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages)) streamed.Add(u);
        string.Concat(streamed.Select(u => u.Text)).Should().Be(response.Text);
    }

    [Fact]
    public async Task Contrastive_client_with_alpha_0_and_beta_0_equals_the_plain_client_and_otherwise_equals_the_decoder()
    {
        using var plain = Plain();
        using var neutral = DeepAlignChatClient.CreateContrastive(_pair.Aligned, _pair.Base, _pair.Tokenizer, _pair.Template,
            new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(0), PlausibilityBeta = 0 });
        var contrastive = new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(1.0) };
        using var cd = DeepAlignChatClient.CreateContrastive(_pair.Aligned, _pair.Base, _pair.Tokenizer, _pair.Template, contrastive);
        cd.GetService<ContrastiveScorer>().Should().NotBeNull();
        plain.GetService<ContrastiveScorer>().Should().BeNull();

        bool anyDifferent = false;
        foreach (var prompt in _pair.Harmful.Concat(_pair.Benign.Take(2)))
        {
            var messages = new[] { User(prompt) };
            var sampling = new ChatOptions { Temperature = 1f, Seed = 99 };
            (await neutral.GetResponseAsync(messages)).Text.Should().Be((await plain.GetResponseAsync(messages)).Text);
            (await neutral.GetResponseAsync(messages, sampling)).Text.Should().Be((await plain.GetResponseAsync(messages, sampling)).Text);

            var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", prompt)));
            using var decoder = new ContrastiveDecoder(_pair.Aligned, _pair.Base, contrastive);
            var expected = decoder.Generate(new[] { new GenerationRequest(promptIds) }, new GenerationOptions { MaxNewTokens = 256 })[0];
            var text = (await cd.GetResponseAsync(messages)).Text;
            text.Should().Be(_pair.Decode(expected.GeneratedIds));
            anyDifferent |= text != (await plain.GetResponseAsync(messages)).Text;
            // Sampled answers too (the v2 pinned pair agrees with its base-contrasted self on most greedy answers).
            anyDifferent |= (await cd.GetResponseAsync(messages, sampling)).Text != (await plain.GetResponseAsync(messages, sampling)).Text;
        }
        anyDifferent.Should().BeTrue("alpha = 1 contrastive decoding must change at least one answer of the pinned pair");
    }

    [Fact]
    public async Task Unsupported_options_and_contents_throw_NotSupportedException_and_bad_values_ArgumentException()
    {
        using var client = Plain();
        var messages = new[] { User(_pair.Benign[0]) };
        async Task<Exception> Fails(ChatOptions? options, IEnumerable<AIChatMessage>? msgs = null)
        {
            var e = await Record.ExceptionAsync(() => client.GetResponseAsync(msgs ?? messages, options));
            e.Should().NotBeNull();
            var s = await Record.ExceptionAsync(async () => { await foreach (var _ in client.GetStreamingResponseAsync(msgs ?? messages, options)) { } });
            s.Should().NotBeNull().And.BeOfType(e!.GetType());
            return e;
        }

        (await Fails(new ChatOptions { ResponseFormat = ChatResponseFormat.Json })).Should().BeOfType<NotSupportedException>()
            .Which.Message.Should().Contain("ResponseFormat");
        (await Fails(new ChatOptions { Tools = new List<AITool> { AIFunctionFactory.Create(() => 1, "one") } })).Should().BeOfType<NotSupportedException>()
            .Which.Message.Should().Contain("Tools");
        (await Fails(new ChatOptions { FrequencyPenalty = 0.5f })).Should().BeOfType<NotSupportedException>();
        (await Fails(new ChatOptions { PresencePenalty = 0.5f })).Should().BeOfType<NotSupportedException>();
        (await Fails(new ChatOptions { ConversationId = "c1" })).Should().BeOfType<NotSupportedException>();
        (await Fails(new ChatOptions { ModelId = "gpt-4o" })).Should().BeOfType<NotSupportedException>().Which.Message.Should().Contain("organism-aligned");
        (await Fails(null, new[] { new AIChatMessage(ChatRole.Tool, "42") })).Should().BeOfType<NotSupportedException>().Which.Message.Should().Contain("tool");
        (await Fails(null, new[] { new AIChatMessage(ChatRole.User, new List<AIContent> { new DataContent(new byte[] { 1 }, "image/png") }) }))
            .Should().BeOfType<NotSupportedException>().Which.Message.Should().Contain("DataContent");

        (await Fails(new ChatOptions { MaxOutputTokens = 0 })).Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("MaxOutputTokens");
        (await Fails(new ChatOptions { TopP = 1.5f })).Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("TopP");
        (await Fails(new ChatOptions { Temperature = -1f })).Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("Temperature");
        (await Fails(new ChatOptions { TopK = -2 })).Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("TopK");
        (await Fails(new ChatOptions { StopSequences = new[] { "" } })).Should().BeOfType<ArgumentException>().Which.Message.Should().Contain("StopSequences");
        (await Fails(null, Array.Empty<AIChatMessage>())).Should().BeOfType<ArgumentException>();
        (await Fails(null, new[] { new AIChatMessage(ChatRole.Assistant, "hi") })).Should().BeOfType<ArgumentException>();

        // Supported: plain-text format and the client's own model id.
        (await client.GetResponseAsync(messages, new ChatOptions { ResponseFormat = ChatResponseFormat.Text, ModelId = "organism-aligned", MaxOutputTokens = 2 }))
            .Usage!.OutputTokenCount.Should().Be(2);
    }

    [Fact]
    public void GetService_returns_metadata_and_the_parts()
    {
        using var client = Plain();
        var metadata = client.GetService<ChatClientMetadata>();
        metadata.Should().NotBeNull();
        metadata!.ProviderName.Should().Be("DeepAlign");
        metadata.DefaultModelId.Should().Be("organism-aligned");
        client.GetService<DeepAlignChatClient>().Should().BeSameAs(client);
        client.GetService<IChatClient>().Should().BeSameAs(client);
        client.GetService<Generator>().Should().BeSameAs(client.Generator);
        client.GetService<INextTokenScorer>().Should().BeOfType<ModelScorer>();
        client.GetService<DeepAlign.Text.ITextTokenizer>().Should().BeSameAs(_pair.Tokenizer);
        client.GetService<ChatClientMetadata>(serviceKey: "other").Should().BeNull();
        client.GetService<string>().Should().BeNull();
        client.StopTokenIds.Should().Equal(3L); // <|im_end|>: tokenizer eos, template end-of-turn and config eos
    }

    [Fact]
    public async Task Cancellation_throws_and_leaves_the_client_usable()
    {
        using var client = Plain();
        var messages = new[] { User(_pair.Benign[0]) };
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await FluentActions.Awaiting(() => client.GetResponseAsync(messages, null, cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();

        using var midway = new CancellationTokenSource();
        int seen = 0;
        var act = async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync(messages, null, midway.Token))
                if (++seen == 1) midway.Cancel();
        };
        await act.Should().ThrowAsync<OperationCanceledException>();
        seen.Should().Be(1, "no update follows the cancellation");

        // Breaking out of a stream early also releases the generator.
        await foreach (var _ in client.GetStreamingResponseAsync(messages)) break;

        var promptIds = _pair.Ids(PinnedPairFixture.ChatMl(("user", _pair.Benign[0])));
        (await client.GetResponseAsync(messages)).Text.Should().Be(_pair.Decode(_pair.Reference(new GenerationRequest(promptIds)).GeneratedIds));
    }

    [Fact]
    public async Task Concurrent_calls_are_serialized()
    {
        using var client = Plain();
        var messages = new[] { User(_pair.Benign[2]) };
        var expected = (await client.GetResponseAsync(messages)).Text;
        var tasks = Enumerable.Range(0, 3).Select(_ => client.GetResponseAsync(messages)).ToArray();
        var streamed = Task.Run(async () =>
        {
            var parts = new List<string>();
            await foreach (var u in client.GetStreamingResponseAsync(messages)) parts.Add(u.Text);
            return string.Concat(parts);
        });
        (await Task.WhenAll(tasks)).Select(r => r.Text).Should().AllBe(expected);
        (await streamed).Should().Be(expected);
    }

    [Fact]
    public async Task Dispose_releases_the_owned_generator_but_not_the_models()
    {
        var client = Plain();
        client.Dispose();
        client.Dispose();
        await FluentActions.Awaiting(() => client.GetResponseAsync(new[] { User(_pair.Benign[0]) })).Should().ThrowAsync<ObjectDisposedException>();
        using var again = Plain();
        (await again.GetResponseAsync(new[] { User(_pair.Benign[0]) }, new ChatOptions { MaxOutputTokens = 1 })).Usage!.OutputTokenCount.Should().Be(1);
    }
}
