namespace DeepAlign.Evaluation.Judges;

/// <summary>A chat judge's cache file (<see cref="ChatClientSafetyJudgeOptions.CacheFile"/>) is malformed; the message
/// names the file and the line at fault.</summary>
public sealed class JudgeCacheFormatException : FormatException
{
    /// <summary>Creates the exception; the message is prefixed with <c>file:line:</c> when the line is known.</summary>
    /// <param name="file">The cache file.</param>
    /// <param name="line">The 1-based line, if the problem is on one line.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public JudgeCacheFormatException(string file, int? line, string problem, Exception? inner = null)
        : base(line is null ? $"{file}: {problem}" : $"{file}:{line}: {problem}", inner)
    {
        File = file;
        Line = line;
    }

    /// <summary>The cache file.</summary>
    public string File { get; }

    /// <summary>The 1-based line number, if the problem is on one line.</summary>
    public int? Line { get; }
}
