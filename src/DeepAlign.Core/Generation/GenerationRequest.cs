namespace DeepAlign.Generation;

/// <summary>
/// One sequence to generate: the prompt ids (rendered chat template, docs/method.md section 0) and an optional
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
