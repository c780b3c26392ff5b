namespace DeepAlign.Generation;

/// <summary>
/// One sequence to generate: the prompt ids (rendered chat template, METHOD.md section 0) and an optional
/// response prefix the model is forced to emit first (prefilling); the model then continues on its own.
/// </summary>
/// <remarks>
/// Forced tokens are response tokens: they take response positions j = 1..K, and the first token the model
/// chooses has position K + 1. They are fed together with the prompt in one prefill pass, never checked
/// against stop ids or stop conditions, and do not count towards <see cref="GenerationOptions.MaxNewTokens"/>.
/// </remarks>
/// <param name="PromptIds">Prompt token ids (may be empty only when a forced prefix is given).</param>
public sealed record GenerationRequest(IReadOnlyList<long> PromptIds)
{
    /// <summary>Response tokens forced before the model continues (empty by default).</summary>
    public IReadOnlyList<long> ForcedPrefixIds { get; init; } = Array.Empty<long>();

    /// <summary>Seed of this row's sampling draws; null derives one from <see cref="GenerationOptions.Seed"/> and the row index.</summary>
    public long? Seed { get; init; }

    /// <summary>
    /// This row's sampling settings; null uses the call's (<see cref="GenerationOptions.DoSample"/>,
    /// <see cref="GenerationOptions.Temperature"/>, <see cref="GenerationOptions.TopK"/>, <see cref="GenerationOptions.TopP"/>).
    /// Rows with different settings can share one batch: a row's tokens depend only on its own scores, settings and seed.
    /// </summary>
    public SamplingSettings? Sampling { get; init; }

    /// <summary>Creates a request with a forced response prefix.</summary>
    /// <param name="promptIds">Prompt ids.</param>
    /// <param name="forcedPrefixIds">Forced response prefix ids.</param>
    /// <returns>The request.</returns>
    public static GenerationRequest WithPrefix(IReadOnlyList<long> promptIds, IReadOnlyList<long> forcedPrefixIds) =>
        new(promptIds) { ForcedPrefixIds = forcedPrefixIds };
}

/// <summary>The outcome of one <see cref="GenerationRequest"/>.</summary>
/// <param name="Index">Index of the request in the call.</param>
/// <param name="PromptIds">The prompt ids, as given.</param>
/// <param name="ForcedPrefixIds">The forced response prefix, as given.</param>
/// <param name="GeneratedIds">Ids chosen after the forced prefix (by the model or a <see cref="ITokenForcer"/>), ending with the stop id when <see cref="FinishReason"/> is <see cref="Generation.FinishReason.StopToken"/>.</param>
/// <param name="FinishReason">Why the row stopped.</param>
public sealed record GeneratedSequence(
    int Index,
    IReadOnlyList<long> PromptIds,
    IReadOnlyList<long> ForcedPrefixIds,
    IReadOnlyList<long> GeneratedIds,
    FinishReason FinishReason)
{
    /// <summary>The whole response: forced prefix followed by the generated ids (what a prefilling attack's judge reads).</summary>
    public IReadOnlyList<long> ResponseIds => ForcedPrefixIds.Concat(GeneratedIds).ToArray();
}

/// <summary>Who chose a generated token.</summary>
public enum TokenOrigin
{
    /// <summary>Greedy or sampled from the scores.</summary>
    Model,

    /// <summary>Overridden by <see cref="GenerationOptions.TokenForcer"/>.</summary>
    Forcer,
}

/// <summary>One token chosen for one row at one step.</summary>
/// <param name="Row">Index of the request.</param>
/// <param name="TokenId">The chosen id.</param>
/// <param name="ResponsePosition">Its response position j (1-based, counting forced prefix tokens).</param>
/// <param name="Origin">Who chose it.</param>
/// <param name="FinishReason">Set when the row finished with this token.</param>
/// <param name="Info">The scorer's per-row information for this step (<see cref="INextTokenScorer.DescribeStep"/>), or null.</param>
public readonly record struct GeneratedToken(int Row, long TokenId, int ResponsePosition, TokenOrigin Origin, FinishReason? FinishReason, object? Info);

/// <summary>The tokens chosen at one decoding step, one per row still active at that step.</summary>
/// <param name="Step">0 for the token chosen after the prefill, then 1, 2, ...</param>
/// <param name="Tokens">The rows' tokens, in increasing row order.</param>
public sealed record GenerationStep(int Step, IReadOnlyList<GeneratedToken> Tokens);

/// <summary>Progress of a generation call, reported after every step.</summary>
/// <param name="Step">Steps completed (1 after the prefill step).</param>
/// <param name="ActiveRows">Rows still generating.</param>
/// <param name="TotalRows">Rows in the call.</param>
/// <param name="GeneratedTokens">Tokens generated so far over all rows.</param>
public readonly record struct GenerationProgress(int Step, int ActiveRows, int TotalRows, long GeneratedTokens);
