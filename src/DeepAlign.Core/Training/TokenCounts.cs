namespace DeepAlign.Training;

/// <summary>Target-token counts per normalisation group (e.g. <c>target</c>, or <c>harmful</c> and <c>benign</c>).</summary>
public sealed class TokenCounts
{
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);

    /// <summary>The default group name used by single-group objectives.</summary>
    public const string DefaultGroup = "target";

    /// <summary>Creates an empty set of counts.</summary>
    public TokenCounts() { }

    /// <summary>Creates counts with one group.</summary>
    /// <param name="group">Group name.</param>
    /// <param name="count">Number of target tokens.</param>
    public TokenCounts(string group, long count) => Add(group, count);

    /// <summary>The groups and their counts.</summary>
    public IReadOnlyDictionary<string, long> Groups => _counts;

    /// <summary>Count for <paramref name="group"/> (0 when absent).</summary>
    /// <param name="group">Group name.</param>
    public long this[string group] => _counts.TryGetValue(group, out var c) ? c : 0;

    /// <summary>Adds <paramref name="count"/> tokens to <paramref name="group"/>.</summary>
    /// <param name="group">Group name.</param>
    /// <param name="count">Non-negative count.</param>
    public void Add(string group, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _counts[group] = this[group] + count;
    }

    /// <summary>Adds every group of <paramref name="other"/>.</summary>
    /// <param name="other">Counts to add.</param>
    public void Add(TokenCounts other)
    {
        foreach (var (g, c) in other._counts) Add(g, c);
    }

    /// <summary>Sum over groups.</summary>
    public long Total => _counts.Values.Sum();
}
