using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepAlign.Configuration;

/// <summary>
/// The <c>generation_config.json</c> of a Hugging Face model folder: default decoding settings and special token ids.
/// Absent keys stay null; unknown keys are kept in <see cref="ExtensionData"/> and written back.
/// </summary>
public sealed record GenerationConfig
{
    /// <summary>Beginning-of-sequence token id.</summary>
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token id(s): one number or a list in HF files.</summary>
    [JsonPropertyName("eos_token_id"), JsonConverter(typeof(IntOrIntListConverter))] public IReadOnlyList<int>? EosTokenIds { get; init; }
    /// <summary>Padding token id.</summary>
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; }
    /// <summary>Whether to sample (true) or decode greedily (false).</summary>
    [JsonPropertyName("do_sample")] public bool? DoSample { get; init; }
    /// <summary>Sampling temperature.</summary>
    [JsonPropertyName("temperature")] public double? Temperature { get; init; }
    /// <summary>Nucleus sampling mass.</summary>
    [JsonPropertyName("top_p")] public double? TopP { get; init; }
    /// <summary>Top-k sampling cut-off.</summary>
    [JsonPropertyName("top_k")] public int? TopK { get; init; }
    /// <summary>Default number of new tokens.</summary>
    [JsonPropertyName("max_new_tokens")] public int? MaxNewTokens { get; init; }
    /// <summary>Keys not modelled above; preserved on save.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtensionData { get; init; }
}
