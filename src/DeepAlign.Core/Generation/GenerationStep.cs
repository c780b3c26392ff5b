namespace DeepAlign.Generation;

/// <summary>The tokens chosen at one decoding step, one per row still active at that step.</summary>
/// <param name="Step">0 for the token chosen after the prefill, then 1, 2, ...</param>
/// <param name="Tokens">The rows' tokens, in increasing row order.</param>
public sealed record GenerationStep(int Step, IReadOnlyList<GeneratedToken> Tokens);
