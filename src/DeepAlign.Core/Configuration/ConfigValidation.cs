using System.Text.Json;

namespace DeepAlign.Configuration;

/// <summary>Checks a <see cref="CausalLMConfig"/> before a model is built; messages name the config key.</summary>
internal static class ConfigValidation
{
    public static void ValidateCommon(CausalLMConfig c, string family)
    {
        Positive(c.VocabSize, "vocab_size");
        Positive(c.HiddenSize, "hidden_size");
        Positive(c.IntermediateSize, "intermediate_size");
        Positive(c.NumHiddenLayers, "num_hidden_layers");
        Positive(c.NumAttentionHeads, "num_attention_heads");
        Positive(c.KeyValueHeads, "num_key_value_heads");
        Positive(c.HeadDim, "head_dim");
        if (c.NumAttentionHeads % c.KeyValueHeads != 0)
            throw new ArgumentException($"Config key 'num_attention_heads' ({c.NumAttentionHeads}) must be a multiple of 'num_key_value_heads' ({c.KeyValueHeads}).");
        if (c.HeadDim % 2 != 0)
            throw new ArgumentException($"Config key 'head_dim' ({c.HeadDim}) must be even for rotary embeddings.");
        if (c.RmsNormEps <= 0) throw new ArgumentException($"Config key 'rms_norm_eps' must be positive, got {c.RmsNormEps}.");
        if (c.RopeTheta <= 0) throw new ArgumentException($"Config key 'rope_theta' must be positive, got {c.RopeTheta}.");
        if (!string.Equals(c.HiddenAct, "silu", StringComparison.Ordinal))
            throw new NotSupportedException($"Config key 'hidden_act' = '{c.HiddenAct}' is not supported for {family} (only 'silu').");
        if (c.RopeScaling is { } rs)
        {
            string? type = rs.EffectiveType;
            if (type is not (null or "default" or "llama3"))
                throw new NotSupportedException($"Config key 'rope_scaling.rope_type' = '{type}' is not supported (only 'llama3').");
            if (type == "llama3")
            {
                if (rs.Factor <= 0) throw new ArgumentException($"Config key 'rope_scaling.factor' must be positive, got {rs.Factor}.");
                if (rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor)
                    throw new ArgumentException($"Config keys 'rope_scaling.low_freq_factor' ({rs.LowFreqFactor}) and 'high_freq_factor' ({rs.HighFreqFactor}) must satisfy 0 < low < high.");
                Positive(rs.OriginalMaxPositionEmbeddings, "rope_scaling.original_max_position_embeddings");
            }
        }
        if (c.ExtensionData is { } extra)
        {
            if (extra.TryGetValue("partial_rotary_factor", out var prf) && prf.ValueKind == JsonValueKind.Number && prf.GetDouble() != 1.0)
                throw new NotSupportedException($"Config key 'partial_rotary_factor' = {prf.GetDouble()} is not supported (only 1.0).");
            foreach (var key in new[] { "attn_logit_softcapping", "final_logit_softcapping" })
                if (extra.TryGetValue(key, out var v) && v.ValueKind != JsonValueKind.Null)
                    throw new NotSupportedException($"Config key '{key}' is not supported.");
        }
    }

    private static void Positive(int value, string key)
    {
        if (value <= 0) throw new ArgumentException($"Config key '{key}' must be positive, got {value}.");
    }
}
