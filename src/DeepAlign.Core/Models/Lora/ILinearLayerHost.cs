using static TorchSharp.torch;

namespace DeepAlign.Models.Lora;

/// <summary>
/// A model whose linear projections can be listed and swapped by name: what LoRA needs to wrap them
/// (the library's Llama and Qwen2 models, <see cref="Common.DecoderOnlyCausalLM"/>, have the same two methods).
/// Names are the module paths of Hugging Face checkpoints (e.g. <c>model.layers.0.self_attn.q_proj</c>).
/// </summary>
public interface ILinearLayerHost
{
    /// <summary>The projections that are still plain linear layers, by module path (wrapped ones are not listed).</summary>
    IEnumerable<(string Name, TorchSharp.Modules.Linear Module)> NamedLinearLayers();

    /// <summary>Replaces the projection at <paramref name="name"/> with <paramref name="replacement"/> (same input and output widths).</summary>
    /// <param name="name">Module path from <see cref="NamedLinearLayers"/>.</param>
    /// <param name="replacement">The new module.</param>
    void ReplaceLinear(string name, nn.Module<Tensor, Tensor> replacement);
}
