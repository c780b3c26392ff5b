using System.Globalization;

namespace DeepAlign.Text.Jinja;

/// <summary>
/// A chat template could not be parsed or rendered; the message names the construct and line. This is the
/// <see cref="ChatTemplateException"/> the Jinja engine raises itself.
/// </summary>
public sealed class JinjaException : ChatTemplateException
{
    /// <summary>Creates the exception.</summary>
    public JinjaException(string message) : base(message, LineOf(message)) { }

    /// <summary>Creates the exception with an inner cause.</summary>
    public JinjaException(string message, Exception inner) : base(message, LineOf(message), inner) { }

    internal JinjaException(string message, int? line, Exception inner) : base(message, line, inner) { }

    private static int? LineOf(string message)
    {
        const string prefix = "line ";
        if (!message.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var end = prefix.Length;
        while (end < message.Length && char.IsAsciiDigit(message[end])) end++;
        return int.TryParse(message.AsSpan(prefix.Length, end - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var line) ? line : null;
    }
}
