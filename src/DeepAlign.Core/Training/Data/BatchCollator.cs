using static TorchSharp.torch;

namespace DeepAlign.Training.Data;

/// <summary>
/// Pads examples on the right into a <see cref="TrainingBatch"/>. Right padding is safe for training with a causal
/// model: pads come after every real token, so no real position attends to them, and they are never targets.
/// (Generation uses left padding; that is the generator's business.)
/// </summary>
public static class BatchCollator
{
    /// <summary>Builds a batch on <paramref name="device"/>.</summary>
    /// <param name="examples">One or more examples; preference pairs (<see cref="TrainingExample.Rejected"/> set) become
    /// two rows each, chosen rows first (see <see cref="TrainingBatch.PreferencePairs"/>); a batch is all pairs or none.</param>
    /// <param name="padId">Id written into padding (its value never matters: pads are masked and not targets).</param>
    /// <param name="device">Device of the tensors.</param>
    /// <param name="maxLength">When set, longer examples are cut on the right to this many tokens.</param>
    public static TrainingBatch Collate(IReadOnlyList<TrainingExample> examples, long padId, Device device, int? maxLength = null)
    {
        if (examples.Count == 0) throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        if (maxLength is <= 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The maximum length must be at least 2.");
        int pairs = examples.Count(e => e.Rejected is not null);
        if (pairs != 0 && pairs != examples.Count)
            throw new ArgumentException($"A batch cannot mix preference pairs ({pairs}) with single sequences ({examples.Count - pairs}).", nameof(examples));
        // Preference pairs: the chosen sequences first, then the rejected ones in the same order (pair i = rows i and pairs + i).
        var sequences = pairs == 0 ? examples : examples.Concat(examples.Select(e => e.Rejected! with { Source = e.Source })).ToArray();
        var rows = sequences.Select(e => maxLength is int m && e.Ids.Length > m ? Truncate(e, m) : e).ToArray();
        int b = rows.Length;
        int t = rows.Max(e => e.Ids.Length);
        var ids = new long[b * t];
        var attention = new long[b * t];
        var targets = new bool[b * t];
        var positions = new long[b * t];
        Array.Fill(ids, padId);
        for (int r = 0; r < b; r++)
        {
            var e = rows[r];
            int off = r * t;
            for (int i = 0; i < e.Ids.Length; i++)
            {
                ids[off + i] = e.Ids[i];
                attention[off + i] = 1;
                targets[off + i] = e.Targets[i];
                positions[off + i] = i >= e.ResponseStart ? i - e.ResponseStart + 1 : 0;
            }
        }
        var shape = new long[] { b, t };
        return new TrainingBatch
        {
            InputIds = tensor(ids, shape, dtype: ScalarType.Int64, device: device),
            AttentionMask = tensor(attention, shape, dtype: ScalarType.Int64, device: device),
            TargetMask = tensor(targets, shape, device: device),
            ResponsePositions = tensor(positions, shape, dtype: ScalarType.Int64, device: device),
            Examples = rows,
            PreferencePairs = pairs,
        };
    }

    private static TrainingExample Truncate(TrainingExample e, int length) => e with
    {
        Ids = e.Ids[..length],
        Targets = e.Targets[..length],
        ResponseStart = Math.Min(e.ResponseStart, length),
        ForcedPrefixLength = Math.Max(0, Math.Min(e.ForcedPrefixLength, length - e.ResponseStart)),
    };
}
