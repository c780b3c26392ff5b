using System.Globalization;
using DeepAlign.Checkpoints;
using DeepAlign.Configuration;

namespace DeepAlign.Models;

/// <summary>
/// Checks a model folder before any module is built (docs/reliability.md): the config's bounds, finite numbers and
/// overflow-checked products, then the config's sizes against the checkpoint header (embedding shape, the set of layer
/// indices, the first layer's projections). A config claiming a million layers or a two-billion vocabulary therefore
/// fails in milliseconds with a typed error instead of allocating the model first.
/// </summary>
internal static class ModelLoadPreflight
{
    public static void Check(string configPath, CausalLMConfig config, SafetensorsCheckpoint checkpoint)
    {
        if (!CausalLanguageModel.SupportedModelTypes.Contains(config.ModelType))
            throw new ModelConfigException(configPath, "model_type",
                $"config key 'model_type' = '{config.ModelType}' is not supported (supported: {string.Join(", ", CausalLanguageModel.SupportedModelTypes)}).");
        ConfigValidation.ValidateFile(config, config.ModelType, configPath);

        Expect(configPath, checkpoint, "model.embed_tokens.weight", [config.VocabSize, config.HiddenSize], "'vocab_size', 'hidden_size'");
        var layers = new HashSet<int>();
        foreach (var name in checkpoint.TensorNames)
        {
            const string prefix = "model.layers.";
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var end = name.IndexOf('.', prefix.Length);
            if (end > prefix.Length && int.TryParse(name.AsSpan(prefix.Length, end - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var i))
                layers.Add(i);
        }
        if (layers.Count != config.NumHiddenLayers || (layers.Count > 0 && layers.Max() != config.NumHiddenLayers - 1))
            throw new ModelConfigException(configPath, "num_hidden_layers",
                $"config key 'num_hidden_layers' = {config.NumHiddenLayers} but the checkpoint {checkpoint.Directory} holds {layers.Count} layer(s){(layers.Count > 0 ? $" (indices {layers.Min()}..{layers.Max()})" : "")}.");
        long q = (long)config.NumAttentionHeads * config.HeadDim, kv = (long)config.KeyValueHeads * config.HeadDim;
        Expect(configPath, checkpoint, "model.layers.0.self_attn.q_proj.weight", [q, config.HiddenSize], "'num_attention_heads' x 'head_dim', 'hidden_size'");
        Expect(configPath, checkpoint, "model.layers.0.self_attn.k_proj.weight", [kv, config.HiddenSize], "'num_key_value_heads' x 'head_dim', 'hidden_size'");
        Expect(configPath, checkpoint, "model.layers.0.mlp.gate_proj.weight", [config.IntermediateSize, config.HiddenSize], "'intermediate_size', 'hidden_size'");
        if (!config.TieWordEmbeddings && checkpoint.Contains("lm_head.weight"))
            Expect(configPath, checkpoint, "lm_head.weight", [config.VocabSize, config.HiddenSize], "'vocab_size', 'hidden_size'");
    }

    private static void Expect(string configPath, SafetensorsCheckpoint checkpoint, string tensor, long[] shape, string keys)
    {
        if (!checkpoint.Contains(tensor))
            throw new CheckpointFormatException(checkpoint.Directory, $"the checkpoint lacks the tensor '{tensor}' that config.json implies.");
        var actual = checkpoint.GetInfo(tensor).Shape;
        if (!actual.SequenceEqual(shape))
            throw new ModelConfigException(configPath, keys,
                $"config keys {keys} imply '{tensor}' of shape [{string.Join(", ", shape)}] but the checkpoint holds [{string.Join(", ", actual)}].");
    }
}
