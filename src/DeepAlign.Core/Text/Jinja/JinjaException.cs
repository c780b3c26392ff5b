namespace DeepAlign.Text.Jinja;

/// <summary>A chat template could not be parsed or rendered; the message names the construct and line.</summary>
public sealed class JinjaException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JinjaException(string message) : base(message) { }

    /// <summary>Creates the exception with an inner cause.</summary>
    public JinjaException(string message, Exception inner) : base(message, inner) { }
}
