using DeepAlign.Models.Common;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models.Llama;

/// <summary>
/// Llama 2 / 3 / 3.1 causal language model (Hugging Face <c>model_type</c> <c>llama</c>): grouped-query attention,
/// <c>rope_theta</c>, <c>rope_scaling</c> of type <c>llama3</c>, optional <c>head_dim</c>, tied or separate output
/// head, and the <c>attention_bias</c> / <c>mlp_bias</c> options. Load with
/// <see cref="CausalLanguageModel.FromPretrained"/> or build with <see cref="CausalLanguageModel.Create"/>.
/// </summary>
public sealed class LlamaForCausalLM : DecoderOnlyCausalLM
{
    /// <summary>Builds a model with uninitialised weights (use the <see cref="CausalLanguageModel"/> factories instead).</summary>
    internal LlamaForCausalLM(CausalLMConfig config, Device device, ScalarType dtype)
        : base(Validate(config), new DecoderArchitecture(config.AttentionBias, config.AttentionBias, config.MlpBias), device, dtype)
    {
    }

    /// <inheritdoc />
    public override string ArchitectureName => "LlamaForCausalLM";

    private static CausalLMConfig Validate(CausalLMConfig config)
    {
        ConfigValidation.ValidateCommon(config, "llama");
        return config;
    }
}
