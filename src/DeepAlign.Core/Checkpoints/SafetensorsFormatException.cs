namespace DeepAlign.Checkpoints;

/// <summary>
/// A safetensors file (or a sharded checkpoint's <c>model.safetensors.index.json</c>) violates the format:
/// header length out of bounds, invalid JSON, unknown dtype, offsets outside the data region, overlapping
/// tensors, a byte length that disagrees with the shape, a truncated file or a missing shard.
/// The message starts with the file path and names the tensor when one is at fault.
/// </summary>
public sealed class SafetensorsFormatException : CheckpointFormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file at fault.</param>
    /// <param name="message">What is wrong.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public SafetensorsFormatException(string filePath, string message, Exception? inner = null)
        : base(filePath, message, inner)
    {
    }
}
