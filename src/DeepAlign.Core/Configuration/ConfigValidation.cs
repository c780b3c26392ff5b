using System.Text.Json;

namespace DeepAlign.Configuration;

/// <summary>Checks a <see cref="CausalLMConfig"/> before a model is built; messages name the config key.</summary>
internal static class ConfigValidation
{
    /// <summary>Upper bounds of the sizes accepted from a config (far above every released model; docs/reliability.md).</summary>
    public const int MaxVocabSize = 4 * 1024 * 1024, MaxHiddenSize = 65_536, MaxIntermediateSize = 1_048_576, MaxLayers = 1024,
        MaxHeads = 1024, MaxHeadDim = 4096;

    /// <summary>Largest element count of one weight matrix (2^34: 64 GiB of fp32).</summary>
    public const long MaxMatrixElements = 1L << 34;

    /// <summary>
    /// Validates a config read from <paramref name="file"/>: every failure is a <see cref="ModelConfigException"/> naming the
    /// file and key (the same checks as <see cref="ValidateCommon"/>, which throws ArgumentException/NotSupportedException for
    /// configs built in code).
    /// </summary>
    public static void ValidateFile(CausalLMConfig c, string family, string file)
    {
        try
        {
            ValidateCommon(c, family);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new ModelConfigException(file, KeyOf(e.Message), e.Message, e);
        }
    }

    private static string? KeyOf(string message)
    {
        var i = message.IndexOf("'", StringComparison.Ordinal);
        var j = i < 0 ? -1 : message.IndexOf("'", i + 1, StringComparison.Ordinal);
        return j > i ? message[(i + 1)..j] : null;
    }

    public static void ValidateCommon(CausalLMConfig c, string family)
    {
        Bounded(c.VocabSize, MaxVocabSize, "vocab_size");
        Bounded(c.HiddenSize, MaxHiddenSize, "hidden_size");
        Bounded(c.IntermediateSize, MaxIntermediateSize, "intermediate_size");
        Bounded(c.NumHiddenLayers, MaxLayers, "num_hidden_layers");
        Bounded(c.NumAttentionHeads, MaxHeads, "num_attention_heads");
        if (c.NumKeyValueHeads is int kv) Bounded(kv, MaxHeads, "num_key_value_heads");
        if (c.HeadDimOverride is int hd) Bounded(hd, MaxHeadDim, "head_dim");
        Positive(c.MaxPositionEmbeddings, "max_position_embeddings");
        Finite(c.RmsNormEps, "rms_norm_eps");
        Finite(c.RopeTheta, "rope_theta");
        Finite(c.InitializerRange, "initializer_range");
        Finite(c.AttentionDropout, "attention_dropout");
        if (c.AttentionDropout < 0 || c.AttentionDropout >= 1)
            throw new ArgumentException($"Config key 'attention_dropout' must be in [0, 1), got {c.AttentionDropout}.");
        if (c.InitializerRange < 0) throw new ArgumentException($"Config key 'initializer_range' must not be negative, got {c.InitializerRange}.");
        // Products that size tensors, overflow-checked: heads x head_dim and every weight matrix.
        long qWidth = (long)c.NumAttentionHeads * c.HeadDim, kvWidth = (long)c.KeyValueHeads * c.HeadDim;
        if (qWidth > int.MaxValue || kvWidth > int.MaxValue)
            throw new ArgumentException($"Config keys 'num_attention_heads' x 'head_dim' ({c.NumAttentionHeads} x {c.HeadDim}) overflow a 32-bit size.");
        foreach (var (rows, cols, what) in new[] { ((long)c.VocabSize, (long)c.HiddenSize, "'vocab_size' x 'hidden_size'"),
                     ((long)c.IntermediateSize, (long)c.HiddenSize, "'intermediate_size' x 'hidden_size'"), (qWidth, (long)c.HiddenSize, "'num_attention_heads' x 'head_dim' x 'hidden_size'") })
            if (rows * cols > MaxMatrixElements)
                throw new ArgumentException($"Config keys {what} give a {rows} x {cols} matrix, more than {MaxMatrixElements} elements.");
        foreach (var (id, key) in (c.EosTokenIds ?? []).Select(i => ((int?)i, "eos_token_id")).Append((c.BosTokenId, "bos_token_id")).Append((c.PadTokenId, "pad_token_id")))
            if (id is int v && (v < 0 || v >= c.VocabSize))
                throw new ArgumentException($"Config key '{key}' = {v} is outside the vocabulary [0, {c.VocabSize}).");
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
                Finite(rs.Factor, "rope_scaling.factor");
                Finite(rs.LowFreqFactor, "rope_scaling.low_freq_factor");
                Finite(rs.HighFreqFactor, "rope_scaling.high_freq_factor");
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

    private static void Bounded(int value, int max, string key)
    {
        Positive(value, key);
        if (value > max) throw new ArgumentException($"Config key '{key}' = {value} exceeds the supported maximum {max}.");
    }

    private static void Finite(double value, string key)
    {
        if (!double.IsFinite(value)) throw new ArgumentException($"Config key '{key}' must be a finite number, got {value}.");
    }

    private static void Positive(int value, string key)
    {
        if (value <= 0) throw new ArgumentException($"Config key '{key}' must be positive, got {value}.");
    }
}
