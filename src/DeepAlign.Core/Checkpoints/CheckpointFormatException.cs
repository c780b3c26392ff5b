namespace DeepAlign.Checkpoints;

/// <summary>
/// A checkpoint folder or file is malformed or does not match the model: a bad <c>config.json</c>, a missing,
/// unexpected or mis-shaped tensor. The message names the file and the key.
/// </summary>
public class CheckpointFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file at fault, if known.</param>
    /// <param name="message">What is wrong (the file name is prefixed automatically).</param>
    /// <param name="inner">The underlying error, if any.</param>
    public CheckpointFormatException(string? filePath, string message, Exception? inner = null)
        : base(filePath is null ? message : $"{filePath}: {message}", inner)
    {
        FilePath = filePath;
    }

    /// <summary>The file at fault, if known.</summary>
    public string? FilePath { get; }
}
