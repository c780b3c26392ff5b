using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// All per-position quantities of the incompleteness profile (docs/method.md section 1) for a batch of positions,
/// as produced by <see cref="PositionStatistics.Compute"/>. Per-position tensors have the leading shape of the
/// inputs (<c>[N]</c> for <c>[N, V]</c> inputs); the top-item tensors add a last dimension M = min(ReportTopItems, K).
/// Owns its tensors.
/// </summary>
public sealed class PositionStatisticsResult : IDisposable
{
    internal PositionStatisticsResult(Tensor klAlignedBase, Tensor klBaseAligned, Tensor? logRatio, Tensor? baseFavoredToken,
        BaseFavoredSet set, Tensor topItemIds, Tensor topItemProbBase, Tensor topItemProbAligned, Tensor topItemValid)
    {
        KlAlignedBase = klAlignedBase; KlBaseAligned = klBaseAligned; LogRatio = logRatio; BaseFavoredToken = baseFavoredToken;
        Set = set; TopItemIds = topItemIds; TopItemProbBase = topItemProbBase; TopItemProbAligned = topItemProbAligned; TopItemValid = topItemValid;
    }

    /// <summary>KL(pi_a || pi_b) = sum_v p_a (l_a - l_b), <c>[N]</c>.</summary>
    public Tensor KlAlignedBase { get; }

    /// <summary>KL(pi_b || pi_a) = sum_v p_b (l_b - l_a), <c>[N]</c>.</summary>
    public Tensor KlBaseAligned { get; }

    /// <summary>r_j = l_b(y_j) - l_a(y_j), <c>[N]</c>; null when no targets were given.</summary>
    public Tensor? LogRatio { get; }

    /// <summary>Whether the realised token is base-favored (r_j &gt; tau), <c>[N]</c> bool; null without targets.</summary>
    public Tensor? BaseFavoredToken { get; }

    /// <summary>B_j with m_b, m_a, p_b(T_j) and U_j.</summary>
    public BaseFavoredSet Set { get; }

    /// <summary>Ids of the top members of B_j by p_b, <c>[N, M]</c> int64; -1 in unused slots.</summary>
    public Tensor TopItemIds { get; }

    /// <summary>p_b of those items, <c>[N, M]</c>; 0 in unused slots.</summary>
    public Tensor TopItemProbBase { get; }

    /// <summary>p_a of those items, <c>[N, M]</c>; 0 in unused slots.</summary>
    public Tensor TopItemProbAligned { get; }

    /// <summary>Which slots hold a member of B_j, <c>[N, M]</c> bool (B_j may have fewer than M members).</summary>
    public Tensor TopItemValid { get; }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        KlAlignedBase.Dispose(); KlBaseAligned.Dispose(); LogRatio?.Dispose(); BaseFavoredToken?.Dispose(); Set.Dispose();
        TopItemIds.Dispose(); TopItemProbBase.Dispose(); TopItemProbAligned.Dispose(); TopItemValid.Dispose();
    }
}
