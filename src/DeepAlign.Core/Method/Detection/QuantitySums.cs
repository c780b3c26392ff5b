namespace DeepAlign.Method.Detection;

/// <summary>
/// Sufficient statistics of the four profile quantities over the sequences that reach one position or bucket: the
/// count, and per quantity (KL(pi_a||pi_b), KL(pi_b||pi_a), U, base-favored rate, in that order) the sum and the sum of
/// squares. Sums of disjoint sets add, so shards merge exactly (<see cref="ProfileAggregator.Add(ProfileStatistics)"/>).
/// </summary>
/// <param name="N">Sequences contributing.</param>
/// <param name="Sums">Sum per quantity (4 values).</param>
/// <param name="SumsOfSquares">Sum of squares per quantity (4 values).</param>
public sealed record QuantitySums(int N, IReadOnlyList<double> Sums, IReadOnlyList<double> SumsOfSquares);
