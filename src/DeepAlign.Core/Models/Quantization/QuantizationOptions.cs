namespace DeepAlign.Models.Quantization;

/// <summary>Options of <see cref="ModelQuantization.Quantize"/> (docs/performance.md, "Decoding precision").</summary>
public sealed record QuantizationOptions
{
    /// <summary>The weight format. Default <see cref="WeightFormat.Int8"/>.</summary>
    public WeightFormat Format { get; init; } = WeightFormat.Int8;

    /// <summary>Also convert the output head (<c>lm_head</c>, or a copy of the tied embedding for int8). Default true:
    /// the head is the largest single matrix read per decoded token.</summary>
    public bool IncludeOutputHead { get; init; } = true;

    /// <summary>Rows (batch x new tokens) up to which a projection runs through the CPU kernels; above it, libtorch's
    /// matmul (dense) or dequantised blocks (int8). Default 8: decoding steps of small batches.</summary>
    public int MaxKernelRows { get; init; } = 8;

    /// <summary>Run single-token cached steps of at most <see cref="MaxKernelRows"/> rows as one fused step in C# (norms,
    /// RoPE, attention over the cache, SiLU gate and residuals on raw memory around the kernels; activations in float32
    /// between the projections) instead of ~50 libtorch calls per layer. Default true; false keeps the libtorch ops
    /// between the kernel projections (whose activations follow the model dtype).</summary>
    public bool FusedDecode { get; init; } = true;

    /// <summary>Copy every converted weight into one buffer in the order a decoding step reads them, advised for
    /// transparent huge pages on Linux, so a batch-1 step streams one contiguous region (docs/performance.md,
    /// "Round 4"). Default true. Dense weights stay the model's parameters (their storage moves into the buffer; the
    /// old storage is freed as each weight moves, so memory does not double); false leaves them where loading put
    /// them.</summary>
    public bool PackWeights { get; init; } = true;

    /// <summary>Options for a format name as command lines spell it: <c>int8</c> (<see cref="WeightFormat.Int8"/>),
    /// <c>w8a8</c> (<see cref="WeightFormat.W8A8"/>), <c>dense</c> or <c>kernels</c> (<see cref="WeightFormat.Dense"/>);
    /// null for null, empty or <c>none</c> (no conversion).</summary>
    /// <param name="name">The format name (case-insensitive).</param>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static QuantizationOptions? Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "none" => null,
        "int8" => new QuantizationOptions { Format = WeightFormat.Int8 },
        "w8a8" => new QuantizationOptions { Format = WeightFormat.W8A8 },
        "dense" or "kernels" => new QuantizationOptions { Format = WeightFormat.Dense },
        _ => throw new ArgumentException($"Unknown quantization '{name}' (use int8, w8a8, dense or none).", nameof(name)),
    };

    /// <summary>Checks every field; throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    /// <returns>This instance.</returns>
    public QuantizationOptions Validate()
    {
        if (!Enum.IsDefined(Format)) throw new ArgumentException($"QuantizationOptions.Format = {Format} is not a weight format.", nameof(Format));
        if (MaxKernelRows < 0) throw new ArgumentException($"QuantizationOptions.MaxKernelRows must be >= 0 (got {MaxKernelRows}).", nameof(MaxKernelRows));
        return this;
    }
}
