namespace DeepAlign.Generation;

/// <summary>Stops a row once its generated ids end with any of the given id sequences.</summary>
public sealed class StopSequenceCondition : IStopCondition
{
    private readonly long[][] _sequences;

    /// <summary>Creates the condition.</summary>
    /// <param name="sequences">Non-empty id sequences.</param>
    public StopSequenceCondition(params IReadOnlyList<long>[] sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        _sequences = sequences.Select(s => s?.ToArray() ?? throw new ArgumentException("A stop sequence is null.", nameof(sequences))).ToArray();
        if (_sequences.Any(s => s.Length == 0)) throw new ArgumentException("Stop sequences must not be empty.", nameof(sequences));
    }

    /// <inheritdoc />
    public bool ShouldStop(int row, GenerationRequest request, IReadOnlyList<long> generatedIds)
    {
        foreach (var s in _sequences)
        {
            if (s.Length > generatedIds.Count) continue;
            int offset = generatedIds.Count - s.Length;
            bool match = true;
            for (int i = 0; i < s.Length && match; i++) match = generatedIds[offset + i] == s[i];
            if (match) return true;
        }
        return false;
    }
}
