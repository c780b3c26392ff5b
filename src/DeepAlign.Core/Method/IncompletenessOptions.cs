namespace DeepAlign.Method;

/// <summary>
/// Options of the incompleteness profile (docs/method.md section 1): the base-favored threshold, the size of the
/// base model's candidate set and the position buckets of the aggregates. Immutable; call <see cref="Validate"/>
/// before use (the functions in <see cref="PositionStatistics"/> do).
/// </summary>
public sealed record IncompletenessOptions
{
    /// <summary>Default position buckets, given by their first positions: 1, 2-5, 6-10, 11-20, 21-40, 41+.</summary>
    public static readonly IReadOnlyList<int> DefaultBucketStarts = [1, 2, 6, 11, 21, 41];

    /// <summary>
    /// Log-ratio threshold tau: token v is base-favored at position j when l_b(v) - l_a(v) &gt; tau.
    /// Default 0 (the paper: the base "assigns higher probability"). Must be finite and &gt;= 0, which keeps
    /// U_j in [0, 1] and the penalty costs c_j(v) in (0, 1).
    /// </summary>
    public double Tau { get; init; } = 0.0;

    /// <summary>
    /// kB, the number of the base model's most probable tokens that form the candidate set T_j (B_j is a subset of it).
    /// Default 50 (docs/method.md; our choice, the paper leaves it open). Values above the vocabulary size are clipped to it.
    /// </summary>
    public int TopKBase { get; init; } = 50;

    /// <summary>
    /// How many members of B_j (the most probable under the base model) are reported per position with both
    /// models' probabilities. Default 5 (our choice; reports only, no effect on any number).
    /// </summary>
    public int ReportTopItems { get; init; } = 5;

    /// <summary>
    /// First position of each aggregation bucket, strictly increasing and starting at 1; the last bucket is open
    /// ("41+"). Default <see cref="DefaultBucketStarts"/> (docs/method.md section 1).
    /// </summary>
    public IReadOnlyList<int> BucketStarts { get; init; } = DefaultBucketStarts;

    /// <summary>Checks every field and throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    /// <returns>This instance, for chaining.</returns>
    /// <exception cref="ArgumentException">A field is out of range.</exception>
    public IncompletenessOptions Validate()
    {
        if (!double.IsFinite(Tau) || Tau < 0)
            throw new ArgumentException($"IncompletenessOptions.Tau must be finite and >= 0 (got {Tau}).", nameof(Tau));
        if (TopKBase < 1)
            throw new ArgumentException($"IncompletenessOptions.TopKBase must be >= 1 (got {TopKBase}).", nameof(TopKBase));
        if (ReportTopItems < 0)
            throw new ArgumentException($"IncompletenessOptions.ReportTopItems must be >= 0 (got {ReportTopItems}).", nameof(ReportTopItems));
        if (BucketStarts is null || BucketStarts.Count == 0)
            throw new ArgumentException("IncompletenessOptions.BucketStarts must list at least one bucket start.", nameof(BucketStarts));
        if (BucketStarts[0] != 1)
            throw new ArgumentException($"IncompletenessOptions.BucketStarts must start at position 1 (got {BucketStarts[0]}).", nameof(BucketStarts));
        for (int i = 1; i < BucketStarts.Count; i++)
            if (BucketStarts[i] <= BucketStarts[i - 1])
                throw new ArgumentException(
                    $"IncompletenessOptions.BucketStarts must be strictly increasing (entry {i} = {BucketStarts[i]} after {BucketStarts[i - 1]}).",
                    nameof(BucketStarts));
        return this;
    }

    /// <summary>Index of the bucket that holds response position <paramref name="position"/> (1-based).</summary>
    /// <param name="position">Response position j &gt;= 1.</param>
    /// <returns>Index into <see cref="BucketStarts"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="position"/> is below 1.</exception>
    public int BucketIndex(int position)
    {
        if (position < 1) throw new ArgumentOutOfRangeException(nameof(position), position, "Response positions start at 1.");
        int idx = 0;
        for (int i = 1; i < BucketStarts.Count; i++)
            if (position >= BucketStarts[i]) idx = i;
        return idx;
    }

    /// <summary>Label of bucket <paramref name="index"/>: "1", "2-5", ..., "41+".</summary>
    /// <param name="index">Index into <see cref="BucketStarts"/>.</param>
    /// <returns>The label used in reports.</returns>
    public string BucketLabel(int index)
    {
        if (index < 0 || index >= BucketStarts.Count) throw new ArgumentOutOfRangeException(nameof(index), index, "No such bucket.");
        int start = BucketStarts[index];
        if (index == BucketStarts.Count - 1) return $"{start}+";
        int end = BucketStarts[index + 1] - 1;
        return end == start ? $"{start}" : $"{start}-{end}";
    }
}
