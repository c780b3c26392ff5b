using System.Text.Json.Serialization;

namespace DeepAlign.Training.Data;

/// <summary>Position within one source.</summary>
/// <param name="Name">Source name (checked on restore).</param>
/// <param name="Epoch">Completed passes over the source.</param>
/// <param name="Cursor">Index of the next example in the current epoch's order.</param>
/// <param name="Drawn">Examples drawn from this source in total.</param>
public sealed record SourcePosition(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("epoch")] long Epoch,
    [property: JsonPropertyName("cursor")] int Cursor,
    [property: JsonPropertyName("drawn")] long Drawn);
