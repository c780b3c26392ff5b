namespace DeepAlign.Method.Detection;

/// <summary>
/// Everything <see cref="ProfileAggregator"/> keeps (its sufficient statistics): counts, sums and sums of squares per
/// position and per bucket. Statistics of disjoint sequence sets add exactly; means, standard errors and the completion
/// check are derived from the totals (<see cref="ProfileAggregator.Result"/>), never averaged across parts.
/// </summary>
/// <param name="Sequences">Sequences added.</param>
/// <param name="Tokens">Response positions added.</param>
/// <param name="ByPosition">Per response position 1..max length.</param>
/// <param name="ByBucket">Per bucket of the options' bucket starts.</param>
/// <param name="BucketTokens">Response positions per bucket.</param>
public sealed record ProfileStatistics(int Sequences, long Tokens, IReadOnlyList<QuantitySums> ByPosition,
    IReadOnlyList<QuantitySums> ByBucket, IReadOnlyList<long> BucketTokens);
