namespace DeepAlign.Generation;

/// <summary>One token chosen for one row at one step.</summary>
/// <param name="Row">Index of the request.</param>
/// <param name="TokenId">The chosen id.</param>
/// <param name="ResponsePosition">Its response position j (1-based, counting forced prefix tokens).</param>
/// <param name="Origin">Who chose it.</param>
/// <param name="FinishReason">Set when the row finished with this token.</param>
/// <param name="Info">The scorer's per-row information for this step (<see cref="INextTokenScorer.DescribeStep"/>), or null.</param>
public readonly record struct GeneratedToken(int Row, long TokenId, int ResponsePosition, TokenOrigin Origin, FinishReason? FinishReason, object? Info);
