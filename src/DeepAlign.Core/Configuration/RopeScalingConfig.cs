using System.Text.Json.Serialization;

namespace DeepAlign.Configuration;

/// <summary>The <c>rope_scaling</c> block of a Hugging Face config.</summary>
public sealed record RopeScalingConfig
{
    /// <summary>Scaling type (<c>llama3</c>); newer files use <c>rope_type</c>, older ones <c>type</c>.</summary>
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    /// <summary>Legacy spelling of <see cref="RopeType"/>.</summary>
    [JsonPropertyName("type")] public string? Type { get; init; }
    /// <summary>Overall scaling factor.</summary>
    [JsonPropertyName("factor")] public double Factor { get; init; } = 1.0;
    /// <summary>llama3: low-frequency factor.</summary>
    [JsonPropertyName("low_freq_factor")] public double LowFreqFactor { get; init; } = 1.0;
    /// <summary>llama3: high-frequency factor.</summary>
    [JsonPropertyName("high_freq_factor")] public double HighFreqFactor { get; init; } = 4.0;
    /// <summary>llama3: context length of the original pretraining.</summary>
    [JsonPropertyName("original_max_position_embeddings")] public int OriginalMaxPositionEmbeddings { get; init; } = 8192;
    /// <summary>The effective type name.</summary>
    [JsonIgnore] public string? EffectiveType => RopeType ?? Type;
}
