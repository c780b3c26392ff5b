using static TorchSharp.torch;

namespace DeepAlign.Checkpoints;

/// <summary>Thin helpers over <see cref="SafetensorsWriter"/> / <see cref="SafetensorsFile"/> for the trainer's own files.</summary>
internal static class TensorFile
{
    /// <summary>Writes one safetensors file atomically (tensors are copied to the CPU one at a time).</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafetensorsWriter.Save(path, tensors, metadata);

    /// <summary>Reads every tensor of a file (validated header); the caller owns the tensors.</summary>
    public static Dictionary<string, Tensor> Read(string path, Device? device = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Tensor file '{path}' does not exist.", path);
        using var file = SafetensorsFile.Open(path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in file.Tensors) result[info.Name] = file.Load(info.Name, device: device).DetachFromDisposeScope();
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }
}
