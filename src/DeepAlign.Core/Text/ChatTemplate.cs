using DeepAlign.Text.Jinja;

namespace DeepAlign.Text;

/// <summary>
/// A chat template bound to a tokenizer's special tokens. Renders conversations exactly as transformers'
/// apply_chat_template(tokenize=False) does, with the variables messages, add_generation_prompt, bos_token,
/// eos_token (plus pad_token/unk_token when known), tools = none, and date_string when set.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly Dictionary<string, object?> _specialTokens;

    /// <summary>Creates a template from its text and the tokenizer's special-token strings.</summary>
    /// <param name="source">The Jinja template text.</param>
    /// <param name="bosToken">The bos_token string, or null.</param>
    /// <param name="eosToken">The eos_token string, or null.</param>
    /// <param name="endOfTurnToken">The token ending an assistant turn; null: inferred from the format or the text.</param>
    /// <param name="format">The built-in format, or Auto to identify it from the text.</param>
    /// <param name="limits">Parse and render budgets; null: <see cref="JinjaLimits.Default"/>.</param>
    /// <param name="origin">Where the text came from (file and key), named in error messages; null: none.</param>
    /// <exception cref="ChatTemplateException">The template cannot be parsed or exceeds a limit.</exception>
    public ChatTemplate(string source, string? bosToken, string? eosToken, string? endOfTurnToken = null, ChatFormat format = ChatFormat.Auto,
        JinjaLimits? limits = null, string? origin = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _template = new JinjaTemplate(source, limits, origin);
        Format = format == ChatFormat.Auto ? ChatFormats.Identify(source) ?? ChatFormat.Auto : format;
        BosToken = bosToken;
        EosToken = eosToken;
        // As transformers does, only tokens the tokenizer defines are passed (an absent bos_token is undefined).
        _specialTokens = new Dictionary<string, object?>();
        if (bosToken is not null) _specialTokens["bos_token"] = bosToken;
        if (eosToken is not null) _specialTokens["eos_token"] = eosToken;
        EndOfTurnToken = endOfTurnToken ?? ChatFormats.EndOfTurnToken(Format)
            ?? (source.Contains("<|eot_id|>", StringComparison.Ordinal) ? "<|eot_id|>"
                : source.Contains("<|im_end|>", StringComparison.Ordinal) ? "<|im_end|>"
                : eosToken);
    }

    /// <summary>
    /// The template for a tokenizer: its own chat_template for <see cref="ChatFormat.Auto"/>, else the named built-in.
    /// </summary>
    /// <exception cref="InvalidOperationException">Auto was asked for but tokenizer_config.json has no chat_template.</exception>
    public static ChatTemplate For(HfTokenizer tokenizer, ChatFormat format = ChatFormat.Auto)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        string source;
        string? origin = null;
        if (format == ChatFormat.Auto)
        {
            source = tokenizer.ChatTemplate ?? throw new InvalidOperationException(
                $"{tokenizer.Source}: tokenizer_config.json has no chat_template; choose a chat format ({string.Join(", ", ChatFormats.Names.Skip(1))}).");
            origin = $"{Path.Combine(tokenizer.Source, "tokenizer_config.json")}: chat_template";
        }
        else source = ChatFormats.TemplateText(format);
        var t = new ChatTemplate(source, tokenizer.BosToken, tokenizer.EosToken, null, format, null, origin);
        if (tokenizer.PadToken is not null) t._specialTokens["pad_token"] = tokenizer.PadToken;
        return t;
    }

    /// <summary>The template text.</summary>
    public string Source => _template.Source;

    /// <summary>Lower-case hex SHA-256 of <see cref="Source"/>.</summary>
    public string Sha256 => ChatFormats.Sha256(Source);

    /// <summary>The built-in format this template is (by exact text), or <see cref="ChatFormat.Auto"/> for another template.</summary>
    public ChatFormat Format { get; }

    /// <summary>The bos_token string given to the template (may be null).</summary>
    public string? BosToken { get; }

    /// <summary>The eos_token string given to the template (may be null).</summary>
    public string? EosToken { get; }

    /// <summary>
    /// The token that ends an assistant turn: <c>&lt;|eot_id|&gt;</c> (Llama-3), <c>&lt;|im_end|&gt;</c> (ChatML/Qwen)
    /// or the eos token (Llama-2 and unknown templates).
    /// </summary>
    public string? EndOfTurnToken { get; }

    /// <summary>Renders <paramref name="messages"/> (with or without a leading system message).</summary>
    /// <exception cref="ChatTemplateException">The template rejected the conversation (e.g. roles that do not alternate) or exceeded a render limit.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        options ??= new ChatTemplateOptions();
        options.Validate();
        var vars = new Dictionary<string, object?>(_specialTokens)
        {
            ["messages"] = messages.Select(m => (object?)m.ToTemplateValue()).ToList(),
            ["add_generation_prompt"] = options.AddGenerationPrompt,
            ["tools"] = null,
        };
        if (options.DateString is not null) vars["date_string"] = options.DateString;
        if (options.ExtraVariables is not null)
            foreach (var (k, v) in options.ExtraVariables) vars[k] = v;
        var text = _template.Render(vars, options.Now);
        return options.AssistantPrefix is null ? text : text + options.AssistantPrefix;
    }
}
