namespace DeepAlign.Text;

/// <summary>
/// Token ids of one (prompt, response) pair, built as docs/method.md section 0 prescribes. Layout of <see cref="Ids"/>:
/// PromptIds, then ResponseIds, then the end-of-turn id when <see cref="EndOfTurnIndex"/> is not null.
/// </summary>
/// <param name="PromptIds">The chat template rendered with the generation prompt (everything up to and including the assistant header), tokenized.</param>
/// <param name="ResponseIds">The response tokenized on its own (no BOS); response position j = 1, 2, ... is ResponseIds[j - 1].</param>
/// <param name="EndOfTurnId">The end-of-turn id appended after the response, or null when none was appended.</param>
public sealed record EncodedConversation(IReadOnlyList<int> PromptIds, IReadOnlyList<int> ResponseIds, int? EndOfTurnId)
{
    /// <summary>All ids: prompt, response, end-of-turn.</summary>
    public IReadOnlyList<int> Ids => [.. PromptIds, .. ResponseIds, .. (EndOfTurnId is int e ? new[] { e } : [])];

    /// <summary>1 on response ids and the end-of-turn id (training targets), 0 on prompt ids; same length as <see cref="Ids"/>.</summary>
    public IReadOnlyList<int> ResponseMask => Ids.Select((_, i) => i >= PromptIds.Count ? 1 : 0).ToArray();

    /// <summary>Index in <see cref="Ids"/> of the first response id (= PromptIds.Count).</summary>
    public int ResponseStart => PromptIds.Count;

    /// <summary>
    /// Index in <see cref="Ids"/> of the end-of-turn id, or null. It is a training target but is excluded from
    /// profiles and attacks.
    /// </summary>
    public int? EndOfTurnIndex => EndOfTurnId is null ? null : PromptIds.Count + ResponseIds.Count;
}
