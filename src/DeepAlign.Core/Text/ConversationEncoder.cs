namespace DeepAlign.Text;

/// <summary>
/// The one way conversations become ids (docs/method-formulas.md, "Conversations and ids"): the prompt is the chat
/// template rendered with the generation prompt and tokenized with special tokens recognised; a BOS is prepended only
/// when the tokenizer adds one and the rendered text does not already start with the bos token (no double BOS); the
/// response is tokenized separately with no BOS, and the template's end-of-turn token is appended for training.
/// Training, profiles, attacks and hosting all encode through this class.
/// </summary>
public sealed class ConversationEncoder : IConversationEncoder
{
    private readonly bool _tokenizerAddsBos;

    /// <summary>Creates an encoder for a tokenizer and its chat template.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="template">Its chat template.</param>
    /// <exception cref="TokenizerFormatException">The template's end-of-turn token is not in the vocabulary.</exception>
    public ConversationEncoder(ITextTokenizer tokenizer, ChatTemplate template)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Template = template ?? throw new ArgumentNullException(nameof(template));
        _tokenizerAddsBos = tokenizer.AddsBosToken;
        if (template.EndOfTurnToken is { } eot)
            EndOfTurnId = tokenizer.GetVocabulary().TryGetValue(eot, out var id) ? id
                : throw new TokenizerFormatException($"The chat template's end-of-turn token '{eot}' is not in the tokenizer's vocabulary{(tokenizer is HfTokenizer h ? $" ({h.Source})" : "")}.");
    }

    /// <summary>An encoder over a tokenizer and the chat template it carries (or a built-in one).</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="format">Which template (default: the tokenizer config's own).</param>
    public static ConversationEncoder For(HfTokenizer tokenizer, ChatFormat format = ChatFormat.Auto) =>
        new(tokenizer, ChatTemplate.For(tokenizer, format));

    /// <summary>Loads <c>tokenizer.json</c> and <c>tokenizer_config.json</c> of a model folder and uses its chat template (or a built-in one).</summary>
    /// <param name="modelDirectory">A Hugging Face model folder.</param>
    /// <param name="format">Which template (default: the folder's own).</param>
    public static ConversationEncoder FromPretrained(string modelDirectory, ChatFormat format = ChatFormat.Auto) =>
        For(HfTokenizer.FromPretrained(modelDirectory), format);

    /// <summary>The tokenizer.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>The chat template used for prompts.</summary>
    public ChatTemplate Template { get; }

    /// <summary>The id appended after responses (eos, <c>&lt;|eot_id|&gt;</c> or <c>&lt;|im_end|&gt;</c>), or null when the template has none.</summary>
    public int? EndOfTurnId { get; }

    /// <summary>The id written into padding: the tokenizer's pad id, else the end-of-turn id, else 0.</summary>
    public int PadId => Tokenizer.PadTokenId ?? EndOfTurnId ?? 0;

    /// <summary>The tokenizer's vocabulary size (the logits columns that enter the softmax).</summary>
    public int VocabSize => Tokenizer.VocabSize;

    /// <summary>Encodes the prompt only (for generation): the rendered template with the generation prompt.</summary>
    /// <param name="messages">The conversation; the last message is the user turn.</param>
    /// <param name="options">Template options (AddGenerationPrompt must stay true).</param>
    public IReadOnlyList<int> EncodePrompt(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        options ??= new ChatTemplateOptions();
        if (!options.AddGenerationPrompt)
            throw new ArgumentException("Prompts for the assistant need AddGenerationPrompt = true.", nameof(options));
        var text = Template.Render(messages, options);
        var ids = Tokenizer.Encode(text, addSpecialTokens: false);
        var bos = Tokenizer.BosToken;
        if (_tokenizerAddsBos && Tokenizer.BosTokenId is int bosId && (bos is null || !text.StartsWith(bos, StringComparison.Ordinal)))
            return [bosId, .. ids];
        return ids;
    }

    /// <summary>Prompt ids as int64 (what tensors and generation requests take).</summary>
    /// <param name="messages">The conversation; the last message is the user turn.</param>
    public long[] PromptIds(IReadOnlyList<ChatMessage> messages) => Widen(EncodePrompt(messages));

    /// <summary>Ids of a response text (tokenized on its own, no BOS, no end-of-turn token) as int64.</summary>
    /// <param name="response">The response text.</param>
    public long[] ResponseIds(string response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return Widen(Tokenizer.Encode(response, addSpecialTokens: false));
    }

    /// <summary>Text of response ids with special tokens (the end-of-turn) dropped.</summary>
    /// <param name="ids">Generated ids.</param>
    public string Decode(IEnumerable<long> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return Tokenizer.Decode(ids.Select(i => checked((int)i)), skipSpecialTokens: true);
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
        var responseIds = Tokenizer.Encode(response, addSpecialTokens: false);
        if (appendEndOfTurn && EndOfTurnId is null)
            throw new InvalidOperationException("The chat template has no end-of-turn token and the tokenizer no eos token; pass appendEndOfTurn: false.");
        return new EncodedConversation(prompt, responseIds, appendEndOfTurn ? EndOfTurnId : null);
    }

    /// <inheritdoc />
    long[] IConversationEncoder.EncodePrompt(IReadOnlyList<ChatMessage> messages) => PromptIds(messages);

    /// <inheritdoc />
    public long[] EncodeResponse(string response, bool appendEndOfTurn)
    {
        var ids = ResponseIds(response);
        if (!appendEndOfTurn) return ids;
        int eot = EndOfTurnId ?? throw new InvalidOperationException("The chat template has no end-of-turn token; train without it (AppendEndOfTurn = false).");
        return [.. ids, eot];
    }

    private static long[] Widen(IReadOnlyList<int> ids)
    {
        var result = new long[ids.Count];
        for (int i = 0; i < result.Length; i++) result[i] = ids[i];
        return result;
    }
}
