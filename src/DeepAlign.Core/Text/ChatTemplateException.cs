namespace DeepAlign.Text;

/// <summary>
/// A chat template (Jinja) could not be parsed or rendered: a syntax error, a construct outside the supported subset,
/// a value of the wrong type, a call to <c>raise_exception</c>, or a render budget (<see cref="Jinja.JinjaLimits"/>)
/// exceeded. The message names the template's origin (e.g. the tokenizer_config.json it came from) when known, and the
/// template line; see docs/reliability.md.
/// </summary>
public class ChatTemplateException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong and where.</param>
    /// <param name="line">The 1-based template line, when known.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public ChatTemplateException(string message, int? line = null, Exception? inner = null) : base(message, inner)
    {
        Line = line;
    }

    /// <summary>The 1-based line of the template at fault, when known.</summary>
    public int? Line { get; }

    /// <summary>Where the template came from (a file path and key), when known.</summary>
    public string? Origin { get; init; }
}
