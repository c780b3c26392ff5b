namespace DeepAlign.Models.Quantization;

/// <summary>How <see cref="ModelQuantization.Quantize"/> stores and multiplies the projection weights.</summary>
public enum WeightFormat
{
    /// <summary>The model's own weights (float32 or bfloat16), unchanged; small batches (decoding) run through the CPU
    /// matrix-vector kernels instead of libtorch's matmul.</summary>
    Dense,

    /// <summary>Weight-only int8: each output channel's weights are rounded to int8 with one float32 scale
    /// (<c>scale = max |w| / 127</c>); activations stay in the model's dtype. Small batches run through the CPU
    /// kernels, which read the int8 weights once per call; larger batches dequantise row blocks into a libtorch matmul.
    /// Inference only: no gradients flow into the int8 weights.</summary>
    Int8,

    /// <summary>Weight-and-activation int8, as llama.cpp's q8_0 multiplies: the weights as <see cref="Int8"/> (one
    /// float32 scale per output channel) and, in the small-batch CPU kernels, each activation row quantized to int8 per
    /// block of 32 values (<c>scale = max |x| / 127</c>), multiplied by integer dot products (AVX-VNNI <c>vpdpbusd</c>,
    /// else AVX-512BW or AVX2 <c>vpmaddubsw</c>/<c>vpmaddwd</c>, else scalar code) with int32 sums. Larger batches (prefill) dequantise the weights as <see cref="Int8"/> does (activations stay
    /// in the model dtype). Inference only.</summary>
    W8A8,
}
