namespace DeepAlign.Text.Jinja;

/// <summary>
/// Bounds on the work a chat template may do, so that a template downloaded with a model cannot crash, hang or
/// exhaust memory (docs/reliability.md). Every limit is checked before the work is done; exceeding one throws
/// <see cref="ChatTemplateException"/> naming the limit and the template line. The defaults are far above what
/// the official templates need (they render a conversation in well under 1% of every budget).
/// </summary>
public sealed record JinjaLimits
{
    /// <summary>The default limits.</summary>
    public static JinjaLimits Default { get; } = new();

    /// <summary>Longest template text accepted, in characters. Default 1,000,000.</summary>
    public int MaxTemplateLength { get; init; } = 1_000_000;

    /// <summary>Deepest nesting of blocks, brackets and operator chains the parser accepts. Default 256.</summary>
    public int MaxNestingDepth { get; init; } = 256;

    /// <summary>Deepest macro call stack (recursive macros). Default 64.</summary>
    public int MaxCallDepth { get; init; } = 64;

    /// <summary>Total for-loop iterations, macro calls and elements visited by filters in one render. Default 2,000,000.</summary>
    public long MaxIterations { get; init; } = 2_000_000;

    /// <summary>Longest list a render may build (<c>range()</c>, list concatenation, split). Default 1,000,000.</summary>
    public int MaxRangeLength { get; init; } = 1_000_000;

    /// <summary>Longest string one operation may produce, in characters. Default 16,777,216.</summary>
    public int MaxStringLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>Total characters all string operations of one render may produce. Default 268,435,456.</summary>
    public long MaxStringWork { get; init; } = 256L * 1024 * 1024;

    /// <summary>Longest rendered output, in characters. Default 16,777,216.</summary>
    public int MaxOutputLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first limit that is not positive.</summary>
    public void Validate()
    {
        static void Positive(long v, string name)
        {
            if (v <= 0) throw new ArgumentException($"{name} must be positive, got {v}.", name);
        }
        Positive(MaxTemplateLength, nameof(MaxTemplateLength));
        Positive(MaxNestingDepth, nameof(MaxNestingDepth));
        Positive(MaxCallDepth, nameof(MaxCallDepth));
        Positive(MaxIterations, nameof(MaxIterations));
        Positive(MaxRangeLength, nameof(MaxRangeLength));
        Positive(MaxStringLength, nameof(MaxStringLength));
        Positive(MaxStringWork, nameof(MaxStringWork));
        Positive(MaxOutputLength, nameof(MaxOutputLength));
    }
}
