namespace DeepAlign.Text;

/// <summary>
/// Token ids of one (prompt, response) pair, built as METHOD.md section 0 prescribes. Layout of <see cref="Ids"/>:
/// PromptIds, then ResponseIds, then the end-of-turn id when <see cref="EndOfTurnIndex"/> is not null.
/// </summary>
/// <param name="PromptIds">The chat template rendered with the generation prompt (everything up to and including the assistant header), tokenized.</param>
/// <param name="ResponseIds">The response tokenized on its own (no BOS); response position j = 1, 2, ... is ResponseIds[j - 1].</param>
/// <param name="EndOfTurnId">The end-of-turn id appended after the response, or null when none was appended.</param>
public sealed record EncodedConversation(IReadOnlyList<int> PromptIds, IReadOnlyList<int> ResponseIds, int? EndOfTurnId)
{
    /// <summary>All ids: prompt, response, end-of-turn.</summary>
    public IReadOnlyList<int> Ids => [.. PromptIds, .. ResponseIds, .. (EndOfTurnId is int e ? new[] { e } : [])];

    /// <summary>1 on response ids and the end-of-turn id (training targets), 0 on prompt ids; same length as <see cref="Ids"/>.</summary>
    public IReadOnlyList<int> ResponseMask => Ids.Select((_, i) => i >= PromptIds.Count ? 1 : 0).ToArray();

    /// <summary>Index in <see cref="Ids"/> of the first response id (= PromptIds.Count).</summary>
    public int ResponseStart => PromptIds.Count;

    /// <summary>
    /// Index in <see cref="Ids"/> of the end-of-turn id, or null. It is a training target but is excluded from
    /// profiles and attacks.
    /// </summary>
    public int? EndOfTurnIndex => EndOfTurnId is null ? null : PromptIds.Count + ResponseIds.Count;
}

/// <summary>
/// Turns conversations into training/scoring ids (METHOD.md section 0): the prompt is the chat template rendered
/// with the generation prompt and tokenized with special tokens recognised; a BOS is prepended only when the
/// tokenizer adds one and the rendered text does not already start with the bos token (no double BOS); the
/// response is tokenized separately with no BOS, and the template's end-of-turn token is appended.
/// </summary>
public sealed class ConversationEncoder
{
    private readonly ITextTokenizer _tokenizer;
    private readonly bool _tokenizerAddsBos;

    /// <summary>Creates an encoder for a tokenizer and its chat template.</summary>
    public ConversationEncoder(ITextTokenizer tokenizer, ChatTemplate template)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Template = template ?? throw new ArgumentNullException(nameof(template));
        _tokenizerAddsBos = tokenizer.AddsBosToken;
        if (template.EndOfTurnToken is { } eot)
            EndOfTurnId = tokenizer.GetVocabulary().TryGetValue(eot, out var id) ? id
                : throw new ArgumentException($"The chat template's end-of-turn token '{eot}' is not in the tokenizer's vocabulary.", nameof(template));
    }

    /// <summary>The chat template used for prompts.</summary>
    public ChatTemplate Template { get; }

    /// <summary>The id appended after responses (eos, <c>&lt;|eot_id|&gt;</c> or <c>&lt;|im_end|&gt;</c>), or null when the template has none.</summary>
    public int? EndOfTurnId { get; }

    /// <summary>Encodes the prompt only (for generation): the rendered template with the generation prompt.</summary>
    public IReadOnlyList<int> EncodePrompt(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        options ??= new ChatTemplateOptions();
        if (!options.AddGenerationPrompt)
            throw new ArgumentException("Prompts for the assistant need AddGenerationPrompt = true.", nameof(options));
        var text = Template.Render(messages, options);
        var ids = _tokenizer.Encode(text, addSpecialTokens: false);
        var bos = _tokenizer.BosToken;
        if (_tokenizerAddsBos && _tokenizer.BosTokenId is int bosId && (bos is null || !text.StartsWith(bos, StringComparison.Ordinal)))
            return [bosId, .. ids];
        return ids;
    }

    /// <summary>
    /// Encodes a prompt and a response. <paramref name="messages"/> ends with the user turn; any forced assistant
    /// prefix belongs to <paramref name="response"/> (response positions count forced tokens too).
    /// </summary>
    /// <param name="messages">The conversation before the response (optionally starting with a system message).</param>
    /// <param name="response">The assistant response text.</param>
    /// <param name="appendEndOfTurn">Append the end-of-turn id (default true).</param>
    /// <param name="options">Template options; AssistantPrefix must be null here.</param>
    public EncodedConversation Encode(IReadOnlyList<ChatMessage> messages, string response, bool appendEndOfTurn = true, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(response);
        options ??= new ChatTemplateOptions();
        if (options.AssistantPrefix is not null)
            throw new ArgumentException("Put the forced assistant prefix at the start of the response instead of ChatTemplateOptions.AssistantPrefix.", nameof(options));
        var prompt = EncodePrompt(messages, options);
        var responseIds = _tokenizer.Encode(response, addSpecialTokens: false);
        if (appendEndOfTurn && EndOfTurnId is null)
            throw new InvalidOperationException("The chat template has no end-of-turn token and the tokenizer no eos token; pass appendEndOfTurn: false.");
        return new EncodedConversation(prompt, responseIds, appendEndOfTurn ? EndOfTurnId : null);
    }
}
