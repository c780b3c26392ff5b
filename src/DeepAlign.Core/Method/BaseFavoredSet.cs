using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// The base-favored set B_j of every position in compact form: B_j is a subset of the base model's top-kB tokens
/// T_j, so it is stored as T_j's ids plus a membership flag, with both models' log-probabilities on T_j, the masses
/// m_b = p_b(B_j), m_a = p_a(B_j), p_b(T_j) and U_j. Shapes: <c>[..., K]</c> for the per-candidate tensors
/// (K = min(kB, V)), <c>[...]</c> for the per-position ones. Produced by <see cref="PositionStatistics.BaseFavored"/>;
/// owns its tensors (dispose it, or let an enclosing dispose scope do so).
/// </summary>
public sealed class BaseFavoredSet : IDisposable
{
    internal BaseFavoredSet(Tensor topIds, Tensor members, Tensor logAligned, Tensor logBase,
        Tensor massBase, Tensor massAligned, Tensor topMassBase, Tensor incompleteness)
    {
        TopIds = topIds; Members = members; LogAligned = logAligned; LogBase = logBase;
        MassBase = massBase; MassAligned = massAligned; TopMassBase = topMassBase; Incompleteness = incompleteness;
    }

    /// <summary>T_j: ids of the base model's top-kB tokens, sorted by decreasing p_b, <c>[..., K]</c> int64.</summary>
    public Tensor TopIds { get; }

    /// <summary>Membership of each T_j entry in B_j (l_b - l_a &gt; tau), <c>[..., K]</c> bool.</summary>
    public Tensor Members { get; }

    /// <summary>l_a at the T_j ids, <c>[..., K]</c> float32.</summary>
    public Tensor LogAligned { get; }

    /// <summary>l_b at the T_j ids, <c>[..., K]</c> float32 (descending).</summary>
    public Tensor LogBase { get; }

    /// <summary>m_b = p_b(B_j), <c>[...]</c>.</summary>
    public Tensor MassBase { get; }

    /// <summary>m_a = p_a(B_j), <c>[...]</c>.</summary>
    public Tensor MassAligned { get; }

    /// <summary>p_b(T_j), the base model's top-kB mass, <c>[...]</c>.</summary>
    public Tensor TopMassBase { get; }

    /// <summary>U_j = 1 - (m_b - m_a) / p_b(T_j), <c>[...]</c>, in [0, 1]; exactly 1 for identical models.</summary>
    public Tensor Incompleteness { get; }

    /// <summary>Number of members of B_j per position, <c>[...]</c> int64.</summary>
    /// <returns>A new tensor.</returns>
    public Tensor Count() => Members.sum(-1, type: ScalarType.Int64);

    /// <summary>B_j as a dense mask over the vocabulary, <c>[..., V]</c> bool (true for members).</summary>
    /// <param name="vocabSize">V, the width of the log-probabilities the set was computed from.</param>
    /// <returns>A new tensor.</returns>
    public Tensor ToDenseMask(long vocabSize)
    {
        using var scope = NewDisposeScope();
        long[] shape = [.. TopIds.shape[..^1], vocabSize];
        var mask = zeros(shape, ScalarType.Bool, TopIds.device);
        return mask.scatter(-1, TopIds, Members).MoveToOuterDisposeScope();
    }

    internal BaseFavoredSet MoveToOuterDisposeScope()
    {
        foreach (var t in All) t.MoveToOuterDisposeScope();
        return this;
    }

    private IEnumerable<Tensor> All => [TopIds, Members, LogAligned, LogBase, MassBase, MassAligned, TopMassBase, Incompleteness];

    /// <summary>Disposes every tensor of the set.</summary>
    public void Dispose()
    {
        foreach (var t in All) t.Dispose();
    }
}
