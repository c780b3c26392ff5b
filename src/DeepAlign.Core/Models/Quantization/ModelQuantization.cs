using DeepAlign.Models.Common;
using TorchSharp;
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
        bool int8 = options.Format is WeightFormat.Int8 or WeightFormat.W8A8;
        bool activations8 = options.Format == WeightFormat.W8A8;
        var head = options.IncludeOutputHead ? model.HeadWeight : null;
        // In decode order: layer by layer q, k, v, o, gate, up, down (NamedLinearLayers' order), then the head.
        var streamed = linears.Select(l => (Tensor)l.Module.weight!).ToList();
        if (head is not null) streamed.Add(head);
        if (!int8)
            foreach (var w in streamed) KernelLinear.DenseKind(w); // refuse before any weight moves
        // Dense weights of mixed dtypes stay where they are (one buffer has one dtype; copying would convert them).
        bool packable = options.PackWeights && (int8 || streamed.All(w => w.dtype == streamed[0].dtype));
        using var packing = packable ? Packing.TryCreate(streamed, int8 ? (activations8 ? ScalarType.Byte : ScalarType.Int8) : streamed[0].dtype) : null;

        int replaced = 0;
        foreach (var (name, linear) in linears)
        {
            var weight = linear.weight!;
            var bias = linear.bias;
            KernelLinear replacement;
            if (int8)
            {
                replacement = KernelLinear.Int8(weight, bias is null ? null : bias.detach().clone().DetachFromDisposeScope(), options.MaxKernelRows,
                    activations8, packing?.Next(weight));
                model.ReplaceLinear(name, replacement);
                linear.Dispose(); // the dense weight is no longer used
            }
            else
            {
                packing?.MoveInto(weight);
                replacement = KernelLinear.Dense(weight, bias, options.MaxKernelRows, register: true);
                model.ReplaceLinear(name, replacement);
            }
            replaced++;
        }
        if (head is not null)
        {
            if (int8)
                model.HeadOverride = KernelLinear.Int8(head, null, options.MaxKernelRows, activations8, packing?.Next(head));
            else
            {
                packing?.MoveInto(head); // a tied head moves the embedding with it (one parameter)
                model.HeadOverride = KernelLinear.Dense(head, null, options.MaxKernelRows, register: false);
            }
            replaced++;
            // An untied int8 head keeps lm_head.weight allocated (it is still a registered parameter); a tied one shares
            // the embedding, which the input lookup needs.
        }
        model.WeightFormat = options.Format;
        if (options.FusedDecode) model.FusedDecoder = KernelDecoder.TryCreate(model.Config, model.Backbone, model.HeadOverride);
        return replaced;
    }

    /// <summary>Hands out consecutive <c>[out, in]</c> views of one <see cref="WeightArena"/> in decode order.</summary>
    private sealed class Packing : IDisposable
    {
        private readonly Tensor _arena;
        private long _offset;

        private Packing(Tensor arena) => _arena = arena;

        /// <summary>An arena for <paramref name="weights"/> stored as <paramref name="dtype"/>; null when any is off the
        /// CPU (the kernels are CPU code) or the buffer cannot be allocated.</summary>
        public static Packing? TryCreate(IReadOnlyList<Tensor> weights, ScalarType dtype)
        {
            if (weights.Count == 0 || weights.Any(w => w.device_type != DeviceType.CPU || w.dim() != 2)) return null;
            long elementSize = dtype switch { ScalarType.Float32 => 4, ScalarType.BFloat16 => 2, _ => 1 };
            long total = weights.Sum(w => WeightArena.Padded(w.NumberOfElements, elementSize));
            var arena = WeightArena.TryAllocate(total, dtype);
            return arena is null ? null : new Packing(arena);
        }

        /// <summary>The next uninitialised view, shaped like <paramref name="weight"/>.</summary>
        public Tensor Next(Tensor weight)
        {
            long rows = weight.shape[0], cols = weight.shape[1], n = rows * cols;
            using var flat = _arena.narrow(0, _offset, n);
            _offset += WeightArena.Padded(n, _arena.ElementSize);
            return flat.view(rows, cols).DetachFromDisposeScope();
        }

        /// <summary>Copies <paramref name="weight"/> into the next view and points the tensor (a parameter, so every
        /// module holding it) at that view; its old storage is freed here when nothing else holds it.</summary>
        public void MoveInto(Tensor weight)
        {
            using var view = Next(weight);
            view.copy_(weight);
            var self = weight.set_(view);
            if (!ReferenceEquals(self, weight)) self.Dispose(); // TorchSharp returns the tensor itself for in-place ops
        }

        public void Dispose() => _arena.Dispose(); // the views keep the storage alive
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
