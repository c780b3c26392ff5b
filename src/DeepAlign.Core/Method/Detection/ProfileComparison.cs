namespace DeepAlign.Method.Detection;

/// <summary>Before/after comparison of two profiles (e.g. the aligned model before and after targeted completion).</summary>
/// <param name="ByBucket">Per-bucket differences (buckets matched by label).</param>
/// <param name="ByPosition">Per-position differences over the positions both profiles reach.</param>
public sealed record ProfileComparison(IReadOnlyList<ProfileDifference> ByBucket, IReadOnlyList<ProfileDifference> ByPosition)
{
    /// <summary>Compares two profiles (after - before).</summary>
    /// <param name="before">The first profile.</param>
    /// <param name="after">The second profile.</param>
    /// <returns>The differences.</returns>
    /// <exception cref="ArgumentException">The profiles use different buckets.</exception>
    public static ProfileComparison Compare(ProfileAggregates before, ProfileAggregates after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        if (!before.ByBucket.Select(b => b.Label).SequenceEqual(after.ByBucket.Select(b => b.Label)))
            throw new ArgumentException("The two profiles use different position buckets; compare profiles made with the same BucketStarts.", nameof(after));
        var buckets = before.ByBucket.Zip(after.ByBucket, (b, a) =>
            new ProfileDifference(b.Label, b.N, a.N, Diff(b.Kl, a.Kl), Diff(b.KlReverse, a.KlReverse), Diff(b.U, a.U), Diff(b.BaseFavoredRate, a.BaseFavoredRate))).ToList();
        var positions = before.ByPosition.Zip(after.ByPosition, (b, a) =>
            new ProfileDifference(b.Position.ToString(System.Globalization.CultureInfo.InvariantCulture), b.N, a.N,
                Diff(b.Kl, a.Kl), Diff(b.KlReverse, a.KlReverse), Diff(b.U, a.U), Diff(b.BaseFavoredRate, a.BaseFavoredRate))).ToList();
        return new ProfileComparison(buckets, positions);
    }

    private static MeanWithError Diff(MeanWithError before, MeanWithError after) =>
        new(after.Mean - before.Mean, Math.Sqrt(before.StdErr * before.StdErr + after.StdErr * after.StdErr));
}
