namespace DeepAlign.Method.Detection;

/// <summary>
/// One sequence to profile: the prompt ids (the chat template rendered with the generation prompt) and the response ids
/// (response position j = 1, 2, ... is <c>ResponseIds[j - 1]</c>; no end-of-turn token).
/// </summary>
/// <param name="PromptIds">Prompt ids (at least one).</param>
/// <param name="ResponseIds">Response ids.</param>
public sealed record ProfileInput(IReadOnlyList<long> PromptIds, IReadOnlyList<long> ResponseIds)
{
    /// <summary>The dataset line's <c>id</c>, if any.</summary>
    public string? Id { get; init; }

    /// <summary>Where the input came from (<c>file:line</c>), used in error messages and reports.</summary>
    public string? Location { get; init; }
}
