namespace DeepAlign.Method.Detection;

/// <summary>The profile of one sequence: one <see cref="PositionProfile"/> per response position.</summary>
/// <param name="Index">Index of the sequence in the stream (0-based).</param>
/// <param name="Id">The dataset line's id, if any.</param>
/// <param name="Location">Where the input came from, if known.</param>
/// <param name="PromptIds">The prompt ids.</param>
/// <param name="Positions">Response positions 1..R in order (R = response length after the MaxResponseTokens cut).</param>
public sealed record SequenceProfile(int Index, string? Id, string? Location, IReadOnlyList<long> PromptIds, IReadOnlyList<PositionProfile> Positions)
{
    /// <summary>The profiled response ids (y_1..y_R).</summary>
    public IReadOnlyList<long> ResponseIds => Positions.Select(p => p.TokenId).ToArray();
}
