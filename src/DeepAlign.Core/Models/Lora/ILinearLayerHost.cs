using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Models.Lora;

/// <summary>
/// A model whose linear projections can be listed and swapped by name: what LoRA needs to wrap them.
/// Names are the module paths of Hugging Face checkpoints (e.g. <c>model.layers.0.self_attn.q_proj</c>).
/// </summary>
public interface ILinearLayerHost
{
    /// <summary>Every linear projection (or a module currently standing in for one, such as a <see cref="LoraLinear"/>), by module path.</summary>
    IEnumerable<(string Name, nn.Module<Tensor, Tensor> Layer)> NamedLinearLayers();

    /// <summary>Replaces the projection at <paramref name="name"/> with <paramref name="replacement"/> (same input and output widths).</summary>
    /// <param name="name">Module path from <see cref="NamedLinearLayers"/>.</param>
    /// <param name="replacement">The new module.</param>
    void ReplaceLinear(string name, nn.Module<Tensor, Tensor> replacement);
}
