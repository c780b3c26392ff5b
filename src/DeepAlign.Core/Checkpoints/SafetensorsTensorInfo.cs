using static TorchSharp.torch;

namespace DeepAlign.Checkpoints;

/// <summary>Where one tensor lives in a safetensors file, as declared by its header.</summary>
/// <param name="Name">Tensor name (Hugging Face parameter name).</param>
/// <param name="DTypeName">Safetensors dtype name (<c>F32</c>, <c>BF16</c>, ...).</param>
/// <param name="ScalarType">The matching TorchSharp element type.</param>
/// <param name="Shape">Dimensions (empty for a scalar).</param>
/// <param name="Begin">Start offset, relative to the data region.</param>
/// <param name="End">End offset (exclusive), relative to the data region.</param>
public sealed record SafetensorsTensorInfo(string Name, string DTypeName, ScalarType ScalarType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of bytes of the tensor's data.</summary>
    public long ByteLength => End - Begin;

    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
