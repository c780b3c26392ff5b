namespace DeepAlign.Method.Detection;

/// <summary>
/// Everything one profiling run reports (docs/profile-report.md): options, the aggregates, the optional gradient probe,
/// and where the per-sequence details were written.
/// </summary>
public sealed record ProfileReport
{
    /// <summary>Version of the JSON schema written by <see cref="ProfileReportWriter"/>.</summary>
    public const int SchemaVersion = 1;

    /// <summary>The options of the run.</summary>
    public required ProfileOptions Options { get; init; }

    /// <summary>The per-position and per-bucket aggregates.</summary>
    public required ProfileAggregates Aggregates { get; init; }

    /// <summary>The gradient signal probe, when it was run.</summary>
    public GradientProbeResult? GradientProbe { get; init; }

    /// <summary><c>teacher_forcing</c> (given responses) or <c>generated</c> (the aligned model's responses after a forced prefix).</summary>
    public string Mode { get; init; } = "teacher_forcing";

    /// <summary>Forced prefix length in <c>generated</c> mode; null otherwise.</summary>
    public int? ForcedPrefixTokens { get; init; }

    /// <summary>The base model (e.g. its folder), for the record.</summary>
    public string? BaseModel { get; init; }

    /// <summary>The aligned model (e.g. its folder), for the record.</summary>
    public string? AlignedModel { get; init; }

    /// <summary>The input data (e.g. its file), for the record.</summary>
    public string? Input { get; init; }

    /// <summary>Name of the per-sequence JSONL file next to the report, or null when none was written.</summary>
    public string? SequencesFile { get; init; }

    /// <summary>When the report was made.</summary>
    public DateTimeOffset CreatedUtc { get; init; } = DateTimeOffset.UtcNow;
}
