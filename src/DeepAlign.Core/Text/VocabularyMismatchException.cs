namespace DeepAlign.Text;

/// <summary>
/// Two models that must score the same ids (base and aligned, teacher and student) do not share one token-to-id map;
/// the message names both sides and the first token or id that differs.
/// </summary>
public sealed class VocabularyMismatchException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What differs, and where.</param>
    public VocabularyMismatchException(string message) : base(message) { }
}
