using System.Globalization;

namespace DeepAlign.Data;

/// <summary>
/// One shard of a dataset split across machines (docs/scale-out.md): shard <see cref="Index"/> of <see cref="Count"/>
/// holds the records whose 0-based index i in the whole dataset satisfies i mod Count = Index. The partition depends only
/// on the record indices, so N shards together hold every record exactly once, and a record keeps its dataset index (and
/// every seed derived from it) whichever shard processes it.
/// </summary>
/// <param name="Index">This shard, 0 &lt;= Index &lt; Count.</param>
/// <param name="Count">Number of shards N (at least 1).</param>
public readonly record struct ShardSpec(int Index, int Count)
{
    /// <summary>The whole dataset as one shard (0/1).</summary>
    public static ShardSpec Whole => new(0, 1);

    /// <summary>Whether this is the whole dataset (Count = 1).</summary>
    public bool IsWhole => Count == 1;

    /// <summary>Parses <c>I/N</c> (e.g. <c>3/8</c>) and validates it.</summary>
    /// <param name="text">The text.</param>
    /// <exception cref="ArgumentException">Not of the form I/N with 0 &lt;= I &lt; N.</exception>
    public static ShardSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count))
            throw new ArgumentException($"Shard '{text}' is not of the form I/N (e.g. 0/4).", nameof(text));
        return new ShardSpec(index, count).Validate();
    }

    /// <summary>Checks 0 &lt;= Index &lt; Count.</summary>
    /// <returns>This shard.</returns>
    /// <exception cref="ArgumentException">Out of range.</exception>
    public ShardSpec Validate()
    {
        if (Count < 1) throw new ArgumentException($"Shard count must be at least 1 (got {Count}).", nameof(Count));
        if (Index < 0 || Index >= Count) throw new ArgumentException($"Shard index must be in [0, {Count - 1}] (got {Index}).", nameof(Index));
        return this;
    }

    /// <summary>Whether the record with dataset index <paramref name="recordIndex"/> belongs to this shard.</summary>
    /// <param name="recordIndex">0-based index in the whole dataset.</param>
    public bool Contains(long recordIndex) => recordIndex >= 0 && recordIndex % Count == Index;

    /// <summary>This shard's items of a stream, with their indices in the whole stream (lazy, in order).</summary>
    /// <typeparam name="T">Item type.</typeparam>
    /// <param name="items">The whole dataset.</param>
    public IEnumerable<(int RecordIndex, T Item)> Select<T>(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return Iterate(this, items);

        static IEnumerable<(int, T)> Iterate(ShardSpec shard, IEnumerable<T> items)
        {
            int i = 0;
            foreach (var item in items)
            {
                if (shard.Contains(i)) yield return (i, item);
                i++;
            }
        }
    }

    /// <summary><c>I/N</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");
}
