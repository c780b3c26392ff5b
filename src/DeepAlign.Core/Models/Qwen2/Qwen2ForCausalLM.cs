using DeepAlign.Models.Common;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models.Qwen2;

/// <summary>
/// Qwen2 / Qwen2.5 causal language model (Hugging Face <c>model_type</c> <c>qwen2</c>): the Llama architecture with
/// biases on the q/k/v projections (none on o_proj or the MLP), usually a tied output head.
/// Sliding-window attention is not supported (<c>use_sliding_window</c> must be false, as in released checkpoints).
/// </summary>
public sealed class Qwen2ForCausalLM : DecoderOnlyCausalLM
{
    /// <summary>Builds a model with uninitialised weights (use the <see cref="CausalLanguageModel"/> factories instead).</summary>
    internal Qwen2ForCausalLM(CausalLMConfig config, Device device, ScalarType dtype)
        : base(Validate(config), new DecoderArchitecture(QkvBias: true, OutputBias: false, MlpBias: false), device, dtype)
    {
    }

    /// <inheritdoc />
    public override string ArchitectureName => "Qwen2ForCausalLM";

    private static CausalLMConfig Validate(CausalLMConfig config)
    {
        ConfigValidation.ValidateCommon(config, "qwen2");
        if (config.UseSlidingWindow)
            throw new NotSupportedException("Config key 'use_sliding_window' = true is not supported (sliding-window attention); set it to false.");
        return config;
    }
}
