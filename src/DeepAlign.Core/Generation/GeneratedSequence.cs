namespace DeepAlign.Generation;

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
