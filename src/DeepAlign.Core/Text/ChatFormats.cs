using System.Security.Cryptography;
using System.Text;

namespace DeepAlign.Text;

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
