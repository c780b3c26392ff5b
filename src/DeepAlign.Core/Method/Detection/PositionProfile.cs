namespace DeepAlign.Method.Detection;

/// <summary>
/// The incompleteness statistics of one response position (docs/method.md section 1), computed by
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
