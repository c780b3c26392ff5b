using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using DeepAlign.Text.Jinja;

namespace DeepAlign.Text;

/// <summary>Which chat template to use: the model's own (<see cref="Auto"/>) or a built-in official one.</summary>
public enum ChatFormat
{
    /// <summary>The chat_template of the model's tokenizer_config.json.</summary>
    Auto,
    /// <summary>Llama-2-chat: <c>&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;...</c>.</summary>
    Llama2,
    /// <summary>Llama-3.0 Instruct (header ids, <c>&lt;|eot_id|&gt;</c>).</summary>
    Llama3,
    /// <summary>Llama-3.1 Instruct (adds the system preamble with "Cutting Knowledge Date" and "Today Date").</summary>
    Llama31,
    /// <summary>Plain ChatML (<c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;</c>), no default system prompt.</summary>
    ChatML,
    /// <summary>Qwen2 Instruct: ChatML with default system prompt "You are a helpful assistant.".</summary>
    Qwen2,
    /// <summary>Qwen2.5 Instruct: ChatML with default system prompt "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.".</summary>
    Qwen25,
    /// <summary>Qwen3: ChatML without default system prompt, with thinking blocks.</summary>
    Qwen3,
}

/// <summary>Names, texts and hashes of the built-in templates.</summary>
public static class ChatFormats
{
    private static readonly (ChatFormat Format, string Name, string File, string EndOfTurn)[] Table =
    [
        (ChatFormat.Llama2, "llama2", "llama2.jinja", ""),
        (ChatFormat.Llama3, "llama3", "llama3.jinja", "<|eot_id|>"),
        (ChatFormat.Llama31, "llama3.1", "llama3.1.jinja", "<|eot_id|>"),
        (ChatFormat.ChatML, "chatml", "chatml.jinja", "<|im_end|>"),
        (ChatFormat.Qwen2, "qwen2", "qwen2.jinja", "<|im_end|>"),
        (ChatFormat.Qwen25, "qwen2.5", "qwen2.5.jinja", "<|im_end|>"),
        (ChatFormat.Qwen3, "qwen3", "qwen3.jinja", "<|im_end|>"),
    ];

    /// <summary>The names accepted by <see cref="Parse"/>: auto, llama2, llama3, llama3.1, chatml, qwen2, qwen2.5, qwen3.</summary>
    public static IReadOnlyList<string> Names { get; } = ["auto", .. Table.Select(t => t.Name)];

    /// <summary>Parses a format name (case-insensitive; see <see cref="Names"/>).</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static ChatFormat Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var n = name.Trim().ToLowerInvariant();
        if (n == "auto") return ChatFormat.Auto;
        foreach (var t in Table)
            if (t.Name == n || t.Format.ToString().Equals(n, StringComparison.OrdinalIgnoreCase)) return t.Format;
        throw new ArgumentException($"Unknown chat format '{name}'; expected one of: {string.Join(", ", Names)}.", nameof(name));
    }

    /// <summary>The canonical name of a built-in format (e.g. "llama3.1").</summary>
    public static string Name(ChatFormat format) => format == ChatFormat.Auto ? "auto" : Entry(format).Name;

    /// <summary>The exact official template text of a built-in format.</summary>
    public static string TemplateText(ChatFormat format)
    {
        var file = Entry(format).File;
        using var stream = typeof(ChatFormats).Assembly.GetManifestResourceStream("DeepAlign.Text.Templates." + file)
            ?? throw new InvalidOperationException($"Embedded template {file} is missing from DeepAlign.Core.");
        using var reader = new StreamReader(stream, new UTF8Encoding(false));
        return reader.ReadToEnd();
    }

    /// <summary>Lower-case hex SHA-256 of the UTF-8 template text.</summary>
    public static string Sha256(string templateText) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(templateText))).ToLowerInvariant();

    /// <summary>The built-in format whose text is exactly <paramref name="templateText"/>, or null.</summary>
    public static ChatFormat? Identify(string templateText)
    {
        foreach (var t in Table)
            if (TemplateText(t.Format) == templateText) return t.Format;
        return null;
    }

    internal static string? EndOfTurnToken(ChatFormat format) => format == ChatFormat.Auto ? null : Entry(format).EndOfTurn is { Length: > 0 } e ? e : null;

    private static (ChatFormat Format, string Name, string File, string EndOfTurn) Entry(ChatFormat format) =>
        Table.FirstOrDefault(t => t.Format == format) is { Name: not null } e ? e
            : throw new ArgumentOutOfRangeException(nameof(format), format, "Not a built-in chat format.");
}

/// <summary>Options for rendering a conversation. Immutable; <see cref="Validate"/> checks it.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>Append the assistant header so the model continues as the assistant (add_generation_prompt). Default true.</summary>
    public bool AddGenerationPrompt { get; init; } = true;

    /// <summary>
    /// Text the assistant turn is forced to start with (prefilling). Rendered as: the template output with the
    /// generation prompt, followed by this text verbatim; no end-of-turn is added. Requires
    /// <see cref="AddGenerationPrompt"/>. Null: none.
    /// </summary>
    public string? AssistantPrefix { get; init; }

    /// <summary>The <c>date_string</c> variable (Llama-3.1's "Today Date"). Null: the template's own default ("26 Jul 2024" for Llama-3.1).</summary>
    public string? DateString { get; init; }

    /// <summary>The clock read by strftime_now() (used by e.g. Llama-3.2 templates). Null: the current UTC time.</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Extra template variables (e.g. <c>enable_thinking</c> for Qwen3); they override nothing else.</summary>
    public IReadOnlyDictionary<string, object?>? ExtraVariables { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (AssistantPrefix is not null && !AddGenerationPrompt)
            throw new ArgumentException("AssistantPrefix needs AddGenerationPrompt = true (the prefix continues the assistant header).", nameof(AssistantPrefix));
        if (ExtraVariables is not null)
            foreach (var k in ExtraVariables.Keys)
                if (k is "messages" or "add_generation_prompt" or "bos_token" or "eos_token")
                    throw new ArgumentException($"ExtraVariables must not set '{k}'; it is set from the call.", nameof(ExtraVariables));
    }
}

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
