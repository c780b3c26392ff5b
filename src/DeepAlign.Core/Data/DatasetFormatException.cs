namespace DeepAlign.Data;

/// <summary>A dataset line or example is malformed; the message names the file and line.</summary>
public sealed class DatasetFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong and where.</param>
    /// <param name="inner">Underlying parse error, if any.</param>
    public DatasetFormatException(string message, Exception? inner = null) : base(message, inner) { }
}
