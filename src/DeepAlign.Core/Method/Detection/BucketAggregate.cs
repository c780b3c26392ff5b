namespace DeepAlign.Method.Detection;

/// <summary>
/// Aggregates of one position bucket: each sequence reaching the bucket contributes the mean of its positions in the
/// bucket; the mean and standard error are taken across those sequences.
/// </summary>
/// <param name="Index">Bucket index.</param>
/// <param name="Label">"1", "2-5", ..., "41+".</param>
/// <param name="Start">First position.</param>
/// <param name="End">Last position, or null for the open last bucket.</param>
/// <param name="N">Sequences reaching the bucket.</param>
/// <param name="Tokens">Response positions in the bucket over all sequences.</param>
/// <param name="Kl">KL(pi_a || pi_b).</param>
/// <param name="KlReverse">KL(pi_b || pi_a).</param>
/// <param name="U">Incompleteness U.</param>
/// <param name="BaseFavoredRate">Base-favored rate of the realised tokens.</param>
/// <param name="Completes">docs/method.md's completion check: bucket mean U at most the margin above the bucket-1 mean U
/// (null when either bucket is empty).</param>
public sealed record BucketAggregate(int Index, string Label, int Start, int? End, int N, long Tokens,
    MeanWithError Kl, MeanWithError KlReverse, MeanWithError U, MeanWithError BaseFavoredRate, bool? Completes);
