namespace DeepAlign.Method.Detection;

/// <summary>Aggregates of one response position j over the sequences that reach it.</summary>
/// <param name="Position">j (1-based).</param>
/// <param name="N">n_j, the number of sequences whose response reaches j.</param>
/// <param name="Kl">KL(pi_a || pi_b).</param>
/// <param name="KlReverse">KL(pi_b || pi_a).</param>
/// <param name="U">Incompleteness U_j.</param>
/// <param name="BaseFavoredRate">Share of realised tokens that are base-favored (r_j &gt; tau).</param>
public sealed record PositionAggregate(int Position, int N, MeanWithError Kl, MeanWithError KlReverse, MeanWithError U, MeanWithError BaseFavoredRate);
