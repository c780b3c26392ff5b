namespace DeepAlign.Generation;

/// <summary>What a scorer is told about the tokens it is scoring.</summary>
/// <param name="Step">0 for the prefill, then 1, 2, ...</param>
/// <param name="Rows">For each row of the current batch, the index of its request in the generation call.</param>
/// <param name="ResponsePositions">For each row, the response position j (1-based, counting forced prefix tokens) of the token about to be chosen.</param>
public sealed record ScoringContext(int Step, IReadOnlyList<int> Rows, IReadOnlyList<int> ResponsePositions);
