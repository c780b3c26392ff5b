namespace DeepAlign.Text;

/// <summary>
/// A tokenizer file (<c>tokenizer.json</c>, <c>tokenizer_config.json</c>) is malformed; the message names the file and
/// the JSON path or entry at fault.
/// </summary>
public sealed class TokenizerFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong and where.</param>
    /// <param name="inner">Underlying parse error, if any.</param>
    public TokenizerFormatException(string message, Exception? inner = null) : base(message, inner) { }
}
