namespace DeepAlign.Models;

/// <summary>
/// Left padding, built in one place: rows of different lengths become one <c>[rows, width]</c> id block (padding first)
/// and its attention mask (0 on padding, 1 on real tokens). Models take positions from the mask, so a padded row sees
/// the same positions as the row alone.
/// </summary>
internal static class LeftPadding
{
    /// <summary>Builds the id and mask arrays (row-major) of left-padded rows.</summary>
    /// <param name="rows">The sequences (at least one).</param>
    /// <param name="padId">Id written into padding (any valid id: the mask hides it).</param>
    /// <param name="maskWidth">Width of the mask, at least the id width; columns past the ids are 1 (room for tokens
    /// generated later). Null: the id width.</param>
    /// <returns>The ids <c>[rows, width]</c>, the mask <c>[rows, maskWidth]</c>, and width = the longest row.</returns>
    public static (long[] Ids, long[] Mask, int Width) Build(IReadOnlyList<IReadOnlyList<long>> rows, long padId, int? maskWidth = null)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("At least one row is needed.", nameof(rows));
        int width = rows.Max(r => r.Count);
        int mw = maskWidth ?? width;
        if (mw < width) throw new ArgumentOutOfRangeException(nameof(maskWidth), mw, $"The mask must be at least as wide as the ids ({width}).");
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * mw];
        for (int b = 0; b < rows.Count; b++)
        {
            var row = rows[b];
            int pad = width - row.Count;
            ids.AsSpan(b * width, pad).Fill(padId);
            for (int i = 0; i < row.Count; i++) ids[b * width + pad + i] = row[i];
            mask.AsSpan(b * mw + pad, mw - pad).Fill(1);
        }
        return (ids, mask, width);
    }
}
