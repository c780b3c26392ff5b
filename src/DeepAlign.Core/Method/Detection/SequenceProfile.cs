namespace DeepAlign.Method.Detection;

/// <summary>One member of the base-favored set B_j with both models' probabilities.</summary>
/// <param name="TokenId">Token id.</param>
/// <param name="Token">Decoded text of the token, when a tokenizer is available.</param>
/// <param name="ProbBase">p_b(v).</param>
/// <param name="ProbAligned">p_a(v).</param>
public readonly record struct BaseFavoredItem(long TokenId, string? Token, double ProbBase, double ProbAligned);

/// <summary>
/// The incompleteness statistics of one response position (METHOD.md section 1), computed by
/// <see cref="PositionStatistics.Compute"/>.
/// </summary>
/// <param name="Position">Response position j (1-based).</param>
/// <param name="TokenId">The realised token y_j.</param>
/// <param name="Token">Its decoded text, when a tokenizer is available.</param>
/// <param name="LogRatio">r_j = l_b(y_j) - l_a(y_j).</param>
/// <param name="BaseFavored">Whether r_j &gt; tau.</param>
/// <param name="KlAlignedBase">KL(pi_a || pi_b) at this position.</param>
/// <param name="KlBaseAligned">KL(pi_b || pi_a) at this position.</param>
/// <param name="MassBase">m_b = p_b(B_j).</param>
/// <param name="MassAligned">m_a = p_a(B_j).</param>
/// <param name="TopMassBase">p_b(T_j), the base model's top-kB mass.</param>
/// <param name="Incompleteness">U_j = 1 - (m_b - m_a) / p_b(T_j).</param>
/// <param name="TopItems">The most probable (under the base) members of B_j, at most ReportTopItems.</param>
public sealed record PositionProfile(
    int Position, long TokenId, string? Token, double LogRatio, bool BaseFavored,
    double KlAlignedBase, double KlBaseAligned, double MassBase, double MassAligned, double TopMassBase,
    double Incompleteness, IReadOnlyList<BaseFavoredItem> TopItems);

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

/// <summary>Progress of a profiling run, reported after every batch.</summary>
/// <param name="Sequences">Sequences profiled so far.</param>
/// <param name="Tokens">Response positions profiled so far.</param>
/// <param name="Batches">Batches completed.</param>
public readonly record struct ProfileProgress(int Sequences, long Tokens, int Batches);
