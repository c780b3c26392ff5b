using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepAlign.Configuration;

/// <summary>
/// The architecture of a decoder-only transformer, with Hugging Face <c>config.json</c> key names so a
/// checkpoint's file maps onto it directly. Keys this library does not know are kept in
/// <see cref="ExtensionData"/> and written back on save; keys it knows but cannot honour make model
/// construction throw <see cref="NotSupportedException"/> naming the key.
/// </summary>
public sealed record CausalLMConfig
{
    /// <summary>Family: <c>llama</c>, <c>qwen2</c>, or a user-defined value for custom models.</summary>
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "llama";
    /// <summary>Architectures list as written by transformers (e.g. <c>LlamaForCausalLM</c>).</summary>
    [JsonPropertyName("architectures")] public IReadOnlyList<string>? Architectures { get; init; }
    /// <summary>Number of rows of the embedding and output matrices.</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; }
    /// <summary>Model width.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    /// <summary>Width of the gated MLP.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    /// <summary>Number of decoder layers.</summary>
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; }
    /// <summary>Number of query heads.</summary>
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; }
    /// <summary>Number of key/value heads (grouped-query attention); defaults to the query head count.</summary>
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    /// <summary>Per-head dimension; defaults to hidden_size / num_attention_heads.</summary>
    [JsonPropertyName("head_dim")] public int? HeadDimOverride { get; init; }
    /// <summary>Longest sequence the model was trained for.</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 2048;
    /// <summary>RMSNorm epsilon.</summary>
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>RoPE base frequency.</summary>
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    /// <summary>RoPE scaling (only <c>rope_type</c>/<c>type</c> = <c>llama3</c> is supported; others throw).</summary>
    [JsonPropertyName("rope_scaling")] public RopeScalingConfig? RopeScaling { get; init; }
    /// <summary>Whether the output head shares the embedding matrix.</summary>
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q/k/v/o projections (Llama option; Qwen2 always has q/k/v bias).</summary>
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    /// <summary>Bias on MLP projections (Llama option).</summary>
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }
    /// <summary>Activation of the gated MLP; only <c>silu</c> is supported.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "silu";
    /// <summary>Attention dropout probability (used in training mode only).</summary>
    [JsonPropertyName("attention_dropout")] public double AttentionDropout { get; init; }
    /// <summary>Beginning-of-sequence token id.</summary>
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence token id(s): a number or a list in HF files.</summary>
    [JsonPropertyName("eos_token_id"), JsonConverter(typeof(IntOrIntListConverter))] public IReadOnlyList<int>? EosTokenIds { get; init; }
    /// <summary>Padding token id, if any.</summary>
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; }
    /// <summary>Dtype the checkpoint was saved in (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>).</summary>
    [JsonPropertyName("torch_dtype")] public string? TorchDtype { get; init; }
    /// <summary>Qwen2 sliding-window switch; sliding windows are not supported and must be off.</summary>
    [JsonPropertyName("use_sliding_window")] public bool UseSlidingWindow { get; init; }
    /// <summary>Standard deviation of the normal initialisation of weights (transformers' default 0.02).</summary>
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; init; } = 0.02;
    /// <summary>Whether generation may use a cache (informational).</summary>
    [JsonPropertyName("use_cache")] public bool UseCache { get; init; } = true;

    /// <summary>Keys not modelled above; preserved when the config is written back.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? ExtensionData { get; init; }

    /// <summary>Key/value heads after defaulting.</summary>
    [JsonIgnore] public int KeyValueHeads => NumKeyValueHeads ?? NumAttentionHeads;
    /// <summary>Per-head dimension after defaulting.</summary>
    [JsonIgnore] public int HeadDim => HeadDimOverride ?? (NumAttentionHeads == 0 ? 0 : HiddenSize / NumAttentionHeads);
}
