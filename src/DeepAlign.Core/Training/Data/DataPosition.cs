using System.Text.Json.Serialization;

namespace DeepAlign.Training.Data;

/// <summary>Where a <see cref="TrainingData"/> stream stands: serialisable, restored on resume.</summary>
public sealed record DataPosition
{
    /// <summary>Total examples drawn so far.</summary>
    [JsonPropertyName("draws")] public long Draws { get; init; }
    /// <summary>Per source, in order: its epoch and the index within that epoch's permutation.</summary>
    [JsonPropertyName("sources")] public IReadOnlyList<SourcePosition> Sources { get; init; } = Array.Empty<SourcePosition>();
}
