namespace DeepAlign.Data;

/// <summary>Partial reports of a sharded run cannot be merged exactly; the message names the files and the field.</summary>
public sealed class ShardMergeException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="error">The kind of problem.</param>
    /// <param name="message">What was wrong and where.</param>
    /// <param name="inner">Underlying error, if any.</param>
    public ShardMergeException(ShardMergeError error, string message, Exception? inner = null) : base(message, inner) => Error = error;

    /// <summary>The kind of problem.</summary>
    public ShardMergeError Error { get; }
}
