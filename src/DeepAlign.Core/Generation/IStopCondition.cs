namespace DeepAlign.Generation;

/// <summary>
/// A stop rule checked after every generated token of a row, on token ids. A text-aware stop-string checker
/// implements it by decoding the tail of the generated ids (see the tokenizer layer).
/// </summary>
public interface IStopCondition
{
    /// <summary>Whether the row should stop now (its last generated token is kept).</summary>
    /// <param name="row">Index of the request in the generation call.</param>
    /// <param name="request">The request (prompt and forced prefix).</param>
    /// <param name="generatedIds">Ids generated so far after the forced prefix, including the newest one.</param>
    /// <returns>True to finish the row with <see cref="FinishReason.StopCondition"/>.</returns>
    bool ShouldStop(int row, GenerationRequest request, IReadOnlyList<long> generatedIds);
}
