namespace DeepAlign.Generation;

/// <summary>The state of one row, as shown to an <see cref="ITokenForcer"/>.</summary>
/// <param name="Row">Index of the request in the generation call.</param>
/// <param name="ResponsePosition">Response position j of the token about to be chosen.</param>
/// <param name="Request">The request.</param>
/// <param name="GeneratedIds">Ids generated so far after the forced prefix.</param>
public sealed record ForcingRow(int Row, int ResponsePosition, GenerationRequest Request, IReadOnlyList<long> GeneratedIds);
