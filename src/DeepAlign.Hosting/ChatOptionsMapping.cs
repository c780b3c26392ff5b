using DeepAlign.Generation;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TemplateMessage = DeepAlign.Text.ChatMessage;

namespace DeepAlign.Hosting;

/// <summary>Maps Microsoft.Extensions.AI requests (messages and <see cref="ChatOptions"/>) to DeepAlign's generation inputs.</summary>
internal static class ChatOptionsMapping
{
    /// <summary>
    /// The decoding options of one request. Greedy unless a positive temperature, or top-p/top-k without a temperature,
    /// asks for sampling; options the client cannot honour throw <see cref="NotSupportedException"/>.
    /// </summary>
    public static TextGenerationOptions ToTextGenerationOptions(ChatOptions? options, int defaultMaxOutputTokens, IReadOnlyList<long> stopTokenIds, string modelId)
    {
        var generation = new GenerationOptions { MaxNewTokens = defaultMaxOutputTokens, StopTokenIds = stopTokenIds };
        if (options is null) return new TextGenerationOptions { Generation = generation }.Validate();

        if (options.ResponseFormat is not null and not ChatResponseFormatText)
            throw new NotSupportedException(
                "ChatOptions.ResponseFormat: DeepAlignChatClient generates plain text only (no JSON mode or schema-constrained decoding); leave ResponseFormat null or ChatResponseFormat.Text.");
        if (options.Tools is { Count: > 0 })
            throw new NotSupportedException("ChatOptions.Tools: DeepAlignChatClient does not support tool or function calling.");
        if (options.FrequencyPenalty is not null)
            throw new NotSupportedException("ChatOptions.FrequencyPenalty: repetition penalties are not implemented by DeepAlign's generator; leave it null.");
        if (options.PresencePenalty is not null)
            throw new NotSupportedException("ChatOptions.PresencePenalty: repetition penalties are not implemented by DeepAlign's generator; leave it null.");
        if (options.Reasoning is not null)
            throw new NotSupportedException("ChatOptions.Reasoning: DeepAlignChatClient has no reasoning controls; leave it null.");
        if (options.ConversationId is not null)
            throw new NotSupportedException("ChatOptions.ConversationId: DeepAlignChatClient keeps no server-side conversations; send the whole history with every request.");
        if (options.ContinuationToken is not null)
            throw new NotSupportedException("ChatOptions.ContinuationToken: DeepAlignChatClient has no background responses to continue.");
        if (options.ModelId is { } requested && !string.Equals(requested, modelId, StringComparison.Ordinal))
            throw new NotSupportedException($"ChatOptions.ModelId = '{requested}', but this client serves only '{modelId}'.");

        if (options.MaxOutputTokens is { } max)
        {
            if (max < 1) throw new ArgumentException($"ChatOptions.MaxOutputTokens must be at least 1; got {max}.", nameof(options));
            generation = generation with { MaxNewTokens = max };
        }
        if (options.Temperature is { } t && (!float.IsFinite(t) || t < 0))
            throw new ArgumentException($"ChatOptions.Temperature must be a finite number >= 0 (0 = greedy); got {t}.", nameof(options));
        if (options.TopP is { } p && !(p > 0 && p <= 1))
            throw new ArgumentException($"ChatOptions.TopP must lie in (0, 1]; got {p}.", nameof(options));
        if (options.TopK is { } k && k < 0)
            throw new ArgumentException($"ChatOptions.TopK must be 0 (off) or positive; got {k}.", nameof(options));

        bool sample = options.Temperature switch
        {
            null => options.TopP is not null || options.TopK is > 0,
            var temperature => temperature > 0,
        };
        if (sample)
            generation = generation with
            {
                DoSample = true,
                Temperature = options.Temperature ?? 1.0,
                TopP = options.TopP ?? 1.0,
                TopK = options.TopK ?? 0,
            };
        if (options.Seed is { } seed) generation = generation with { Seed = seed };

        var stops = options.StopSequences ?? (IList<string>)Array.Empty<string>();
        for (int i = 0; i < stops.Count; i++)
            if (string.IsNullOrEmpty(stops[i]))
                throw new ArgumentException($"ChatOptions.StopSequences[{i}] is null or empty; stop sequences must be non-empty strings.", nameof(options));
        return new TextGenerationOptions { Generation = generation, StopStrings = stops.ToArray() }.Validate();
    }

    /// <summary>
    /// The template messages of a request and the forced assistant prefix (the text of a trailing assistant message,
    /// or null). <paramref name="instructions"/> become a leading system message (joined to an existing one).
    /// </summary>
    public static (IReadOnlyList<TemplateMessage> Conversation, string? AssistantPrefix) ToConversation(IEnumerable<AIChatMessage> messages, string? instructions)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = new List<TemplateMessage>();
        int index = 0;
        foreach (var message in messages)
        {
            if (message is null) throw new ArgumentException($"Chat message {index} is null.", nameof(messages));
            string role = RoleName(message.Role, index);
            foreach (var content in message.Contents)
                if (content is not TextContent)
                    throw new NotSupportedException(
                        $"Chat message {index} ({role}) holds {content?.GetType().Name ?? "null"} content; DeepAlignChatClient accepts text content only.");
            list.Add(new TemplateMessage(role, string.Concat(message.Contents.OfType<TextContent>().Select(c => c.Text))));
            index++;
        }
        if (list.Count == 0) throw new ArgumentException("At least one chat message is needed.", nameof(messages));

        string? prefix = null;
        if (list[^1].Role == "assistant")
        {
            prefix = list[^1].Content;
            list.RemoveAt(list.Count - 1);
            if (list.Count == 0)
                throw new ArgumentException("A trailing assistant message is a response prefix; it needs at least one message before it.", nameof(messages));
        }
        if (!string.IsNullOrEmpty(instructions))
        {
            if (list[0].Role == "system") list[0] = list[0] with { Content = list[0].Content + "\n\n" + instructions };
            else list.Insert(0, TemplateMessage.System(instructions));
        }
        return (list, prefix);
    }

    private static string RoleName(ChatRole role, int index)
    {
        if (role == ChatRole.System) return "system";
        if (role == ChatRole.User) return "user";
        if (role == ChatRole.Assistant) return "assistant";
        throw new NotSupportedException($"Chat message {index} has role '{role.Value}'; DeepAlignChatClient supports system, user and assistant messages.");
    }
}
