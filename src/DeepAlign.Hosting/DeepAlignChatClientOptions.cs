namespace DeepAlign.Hosting;

/// <summary>
/// Settings of a <see cref="DeepAlignChatClient"/> that do not change per request (per-request settings come from
/// <c>Microsoft.Extensions.AI.ChatOptions</c>).
/// </summary>
public sealed record DeepAlignChatClientOptions
{
    /// <summary>
    /// The model id reported in <c>ChatClientMetadata.DefaultModelId</c> and in every response. Null: "deepalign"
    /// (the DI helpers use the model folder's name).
    /// </summary>
    public string? ModelId { get; init; }

    /// <summary>Largest number of generated tokens when a request sets no <c>ChatOptions.MaxOutputTokens</c>. Default 256.</summary>
    public int DefaultMaxOutputTokens { get; init; } = 256;

    /// <summary>
    /// Token ids that end the assistant turn. Null (the default): the tokenizer's end-of-sequence ids (tokenizer config
    /// plus <c>generation_config.json</c>), the chat template's end-of-turn token and, for the
    /// <see cref="DeepAlignChatClient.Create"/> factories, the model config's <c>eos_token_id</c>s.
    /// </summary>
    public IReadOnlyList<long>? StopTokenIds { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public DeepAlignChatClientOptions Validate()
    {
        if (ModelId is not null && string.IsNullOrWhiteSpace(ModelId))
            throw new ArgumentException("DeepAlignChatClientOptions.ModelId must not be blank when set.", nameof(ModelId));
        if (DefaultMaxOutputTokens < 1)
            throw new ArgumentException($"DeepAlignChatClientOptions.DefaultMaxOutputTokens must be at least 1; got {DefaultMaxOutputTokens}.", nameof(DefaultMaxOutputTokens));
        if (StopTokenIds is not null)
            foreach (var id in StopTokenIds)
                if (id < 0) throw new ArgumentException($"DeepAlignChatClientOptions.StopTokenIds must be non-negative; found {id}.", nameof(StopTokenIds));
        return this;
    }
}
