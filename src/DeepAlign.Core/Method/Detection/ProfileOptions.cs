namespace DeepAlign.Method.Detection;

/// <summary>
/// Options of the incompleteness profile (docs/method.md section 1): the statistics' threshold, candidate-set size and
/// buckets (defaults from <see cref="IncompletenessOptions"/>), plus how the data is batched. Immutable; call
/// <see cref="Validate"/> before use (the detector does).
/// </summary>
public sealed record ProfileOptions
{
    private static readonly IncompletenessOptions Defaults = new();

    /// <summary>tau: a token is base-favored when l_b - l_a &gt; tau. Default 0 (see <see cref="IncompletenessOptions.Tau"/>).</summary>
    public double Tau { get; init; } = Defaults.Tau;

    /// <summary>kB, size of the base model's candidate set T_j. Default 50 (see <see cref="IncompletenessOptions.TopKBase"/>).</summary>
    public int TopKBase { get; init; } = Defaults.TopKBase;

    /// <summary>How many members of B_j are reported per position with both probabilities. Default 5.</summary>
    public int ReportTopItems { get; init; } = Defaults.ReportTopItems;

    /// <summary>First positions of the aggregation buckets. Default 1, 2, 6, 11, 21, 41.</summary>
    public IReadOnlyList<int> BucketStarts { get; init; } = Defaults.BucketStarts;

    /// <summary>Sequences per forward pass (each model sees one left-padded batch). Default 8. Memory grows with
    /// BatchSize x (prompt + response length) x vocabulary.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Responses are cut to their first MaxResponseTokens tokens (positions beyond are not profiled). Default 256.</summary>
    public int MaxResponseTokens { get; init; } = 256;

    /// <summary>Margin of the completion check: a bucket completes when its mean U is at most this much above the
    /// bucket-1 mean U (docs/method.md section 1). Default 0.1.</summary>
    public double CompletionMargin { get; init; } = 0.1;

    /// <summary>The statistics options these fields describe.</summary>
    /// <returns>A validated <see cref="IncompletenessOptions"/>.</returns>
    public IncompletenessOptions ToIncompletenessOptions() => new IncompletenessOptions
    {
        Tau = Tau,
        TopKBase = TopKBase,
        ReportTopItems = ReportTopItems,
        BucketStarts = BucketStarts,
    }.Validate();

    /// <summary>Checks every field; throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    /// <returns>This instance, for chaining.</returns>
    /// <exception cref="ArgumentException">A field is out of range.</exception>
    public ProfileOptions Validate()
    {
        try { ToIncompletenessOptions(); }
        catch (ArgumentException e) { throw new ArgumentException(e.Message.Replace("IncompletenessOptions.", "ProfileOptions.", StringComparison.Ordinal), e.ParamName, e); }
        if (BatchSize < 1) throw new ArgumentException($"ProfileOptions.BatchSize must be >= 1 (got {BatchSize}).", nameof(BatchSize));
        if (MaxResponseTokens < 1) throw new ArgumentException($"ProfileOptions.MaxResponseTokens must be >= 1 (got {MaxResponseTokens}).", nameof(MaxResponseTokens));
        if (!double.IsFinite(CompletionMargin) || CompletionMargin < 0)
            throw new ArgumentException($"ProfileOptions.CompletionMargin must be finite and >= 0 (got {CompletionMargin}).", nameof(CompletionMargin));
        return this;
    }
}
