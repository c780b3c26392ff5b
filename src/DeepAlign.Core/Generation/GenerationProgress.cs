namespace DeepAlign.Generation;

/// <summary>Progress of a generation call, reported after every step.</summary>
/// <param name="Step">Steps completed (1 after the prefill step).</param>
/// <param name="ActiveRows">Rows still generating.</param>
/// <param name="TotalRows">Rows in the call.</param>
/// <param name="GeneratedTokens">Tokens generated so far over all rows.</param>
public readonly record struct GenerationProgress(int Step, int ActiveRows, int TotalRows, long GeneratedTokens);
