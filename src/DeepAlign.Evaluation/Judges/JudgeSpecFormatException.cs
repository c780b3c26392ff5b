namespace DeepAlign.Evaluation.Judges;

/// <summary>A judge spec (<c>judge.json</c>) is malformed; the message names the file, and the line or key at fault.</summary>
public sealed class JudgeSpecFormatException : FormatException
{
    /// <summary>Creates the exception; the message is prefixed with <c>file:line:</c> when they are known.</summary>
    public JudgeSpecFormatException(string? file, int? line, string problem, Exception? inner = null)
        : base(Format(file, line, problem), inner)
    {
        File = file;
        Line = line;
    }

    /// <summary>The file that was being read, if known.</summary>
    public string? File { get; }
    /// <summary>The 1-based line number, if the problem is on one line.</summary>
    public int? Line { get; }

    private static string Format(string? file, int? line, string problem) =>
        (file, line) switch
        {
            (not null, not null) => $"{file}:{line}: {problem}",
            (not null, null) => $"{file}: {problem}",
            (null, not null) => $"line {line}: {problem}",
            _ => problem,
        };
}
