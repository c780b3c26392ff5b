namespace DeepAlign.Method.Detection;

/// <summary>The dataset-level incompleteness profile: per position and per bucket.</summary>
/// <param name="Sequences">Sequences aggregated (including ones with an empty response).</param>
/// <param name="Tokens">Response positions aggregated.</param>
/// <param name="ByPosition">One row per position 1..max length.</param>
/// <param name="ByBucket">One row per bucket.</param>
/// <param name="CompletionMargin">The margin of the completion check.</param>
public sealed record ProfileAggregates(int Sequences, long Tokens, IReadOnlyList<PositionAggregate> ByPosition,
    IReadOnlyList<BucketAggregate> ByBucket, double CompletionMargin)
{
    /// <summary>The first bucket (after bucket 1) whose mean U is more than the margin above bucket 1's, i.e. where
    /// alignment stays incomplete; null when every non-empty bucket completes.</summary>
    public BucketAggregate? FirstIncompleteBucket => ByBucket.FirstOrDefault(b => b.Completes == false);
}
