using DeepAlign.Models.Common;
using static TorchSharp.torch;

namespace DeepAlign.Models.Quantization;

/// <summary>
/// Converts a loaded model for fast inference (docs/performance.md, "Decoding precision"): every attention and MLP
/// projection of every layer (and by default the output head) is replaced by a projection whose small-batch CPU calls
/// run through SIMD matrix-vector kernels, over the model's own weights (<see cref="WeightFormat.Dense"/>) or over
/// weight-only int8 copies with per-output-channel scales (<see cref="WeightFormat.Int8"/>). Works for every family on
/// the shared decoder (Llama, Qwen2) and with the KV cache, the generator and the contrastive decoder, since only the
/// projections change.
/// </summary>
public static class ModelQuantization
{
    /// <summary>
    /// Replaces the model's projections in place. Int8 frees the dense projection weights (the embedding stays dense;
    /// with a tied head an int8 copy of it becomes the head). Call it once, after loading and before decoding; LoRA
    /// and training need the plain model (apply adapters, merge, then quantize).
    /// </summary>
    /// <param name="model">A model from <see cref="CausalLanguageModel"/> (not yet quantized).</param>
    /// <param name="options">Options; null for int8 with the head included.</param>
    /// <returns>The number of projections replaced (the head counts as one).</returns>
    /// <exception cref="InvalidOperationException">The model was already converted, or has adapters on its projections.</exception>
    public static int Quantize(this DecoderOnlyCausalLM model, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options = (options ?? new QuantizationOptions()).Validate();
        if (model.WeightFormat is not null) throw new InvalidOperationException($"The model is already converted ({model.WeightFormat}).");
        var linears = model.NamedLinearLayers().ToList();
        if (linears.Count != model.Config.NumHiddenLayers * 7)
            throw new InvalidOperationException("Some projections are not plain Linear layers (adapters?); merge them before quantizing.");
        using var noGrad = no_grad();
        int replaced = 0;
        foreach (var (name, linear) in linears)
        {
            var weight = linear.weight!;
            var bias = linear.bias;
            KernelLinear replacement;
            if (options.Format is WeightFormat.Int8 or WeightFormat.W8A8)
            {
                replacement = KernelLinear.Int8(weight, bias is null ? null : bias.detach().clone().DetachFromDisposeScope(), options.MaxKernelRows,
                    activations8: options.Format == WeightFormat.W8A8);
                model.ReplaceLinear(name, replacement);
                linear.Dispose(); // the dense weight is no longer used
            }
            else
            {
                replacement = KernelLinear.Dense(weight, bias, options.MaxKernelRows, register: true);
                model.ReplaceLinear(name, replacement);
            }
            replaced++;
        }
        if (options.IncludeOutputHead)
        {
            var head = model.HeadWeight;
            model.HeadOverride = options.Format is WeightFormat.Int8 or WeightFormat.W8A8
                ? KernelLinear.Int8(head, null, options.MaxKernelRows, activations8: options.Format == WeightFormat.W8A8)
                : KernelLinear.Dense(head, null, options.MaxKernelRows, register: false);
            replaced++;
            // An untied int8 head keeps lm_head.weight allocated (it is still a registered parameter); a tied one shares
            // the embedding, which the input lookup needs.
        }
        model.WeightFormat = options.Format;
        if (options.FusedDecode) model.FusedDecoder = KernelDecoder.TryCreate(model.Config, model.Backbone, model.HeadOverride);
        return replaced;
    }

    /// <summary>Bytes of weights read per decoded token: every projection and the head as stored for the kernels
    /// (embedding lookups, norms and biases excluded).</summary>
    /// <param name="model">The model (converted or not).</param>
    public static long StreamedWeightBytesPerToken(this DecoderOnlyCausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long bytes = 0;
        var c = model.Config;
        long perLayer = (long)c.HiddenSize * c.NumAttentionHeads * c.HeadDim * 2 + (long)c.HiddenSize * c.KeyValueHeads * c.HeadDim * 2
            + 3L * c.HiddenSize * c.IntermediateSize;
        long head = (long)c.VocabSize * c.HiddenSize;
        double elementBytes = model.WeightFormat is WeightFormat.Int8 or WeightFormat.W8A8 ? 1 : model.DType == ScalarType.Float32 ? 4 : 2;
        bytes += (long)((perLayer * c.NumHiddenLayers + head) * elementBytes);
        return bytes;
    }
}
