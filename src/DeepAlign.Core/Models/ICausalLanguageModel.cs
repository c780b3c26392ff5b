using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models;

/// <summary>
/// A decoder-only language model that maps token ids to next-token logits. This is the one abstraction
/// every DeepAlign component (detector, decoder, trainers, generator) works against; the Llama and
/// Qwen2 families implement it, and so can a user's own model.
/// </summary>
/// <remarks>
/// Conventions every implementation follows:
/// <list type="bullet">
/// <item><c>inputIds</c> is <c>[batch, newTokens]</c> int64 on <see cref="Device"/>.</item>
/// <item><c>attentionMask</c>, when given, is <c>[batch, pastTokens + newTokens]</c> with 1 for real tokens and
/// 0 for (left) padding; it covers the cached positions too. Position ids are derived from it
/// (cumulative count of real tokens minus one), so left-padded rows get the same positions as unpadded ones.</item>
/// <item>With a <see cref="KvCache"/>, the new keys and values are appended to it in place and attention covers
/// the cached positions; <see cref="KvCache.Length"/> grows by <c>newTokens</c>.</item>
/// <item>Logits are returned in float32 whatever the weight dtype, shape <c>[batch, newTokens or 1, VocabSize]</c>.</item>
/// </list>
/// </remarks>
public interface ICausalLanguageModel : IDisposable
{
    /// <summary>The architecture hyper-parameters and special token ids (Hugging Face <c>config.json</c> semantics).</summary>
    CausalLMConfig Config { get; }

    /// <summary>The device the weights live on; inputs must be on it.</summary>
    Device Device { get; }

    /// <summary>The dtype of the weights (float32, bfloat16 or float16).</summary>
    ScalarType DType { get; }

    /// <summary>Width of the logits (may exceed the tokenizer's vocabulary; callers cut it).</summary>
    int VocabSize { get; }

    /// <summary>
    /// Runs the model. See the interface remarks for shapes and masking.
    /// </summary>
    /// <param name="inputIds">Token ids, <c>[batch, newTokens]</c>, int64.</param>
    /// <param name="attentionMask">Optional 0/1 mask over past and new positions, <c>[batch, past + new]</c>.</param>
    /// <param name="cache">Optional key/value cache, updated in place.</param>
    /// <param name="lastPositionOnly">When true, only the last position's logits are computed (<c>[batch, 1, V]</c>),
    /// which saves the output projection on long prompts during generation.</param>
    /// <returns>float32 logits.</returns>
    Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, bool lastPositionOnly = false);

    /// <summary>Creates an empty cache sized for this model (grown on demand past <paramref name="capacity"/>).</summary>
    /// <param name="batchSize">Number of sequences.</param>
    /// <param name="capacity">Initial number of positions to preallocate.</param>
    KvCache CreateCache(int batchSize, int capacity);

    /// <summary>All parameters with their Hugging Face names (e.g. <c>model.layers.0.self_attn.q_proj.weight</c>).</summary>
    IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> NamedParameters();

    /// <summary>Parameters that currently require gradients (all of them for full fine-tuning; adapters only under LoRA).</summary>
    IEnumerable<TorchSharp.Modules.Parameter> TrainableParameters();

    /// <summary>Switches dropout and similar layers between training and evaluation behaviour.</summary>
    /// <param name="training">True for training mode.</param>
    void SetTrainingMode(bool training);
}
