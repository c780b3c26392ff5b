using static TorchSharp.torch;

namespace DeepAlign.Checkpoints;

/// <summary>Maps safetensors dtype names to TorchSharp scalar types and element sizes.</summary>
internal static class SafetensorsDType
{
    private static readonly Dictionary<string, (ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["F64"] = (ScalarType.Float64, 8),
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>The dtype names this library reads and writes.</summary>
    public static IEnumerable<string> Names => ByName.Keys;

    public static bool TryParse(string name, out ScalarType type, out int elementSize)
    {
        if (ByName.TryGetValue(name, out var entry)) { type = entry.Type; elementSize = entry.Size; return true; }
        type = default; elementSize = 0; return false;
    }

    public static string NameOf(ScalarType type)
    {
        foreach (var (name, entry) in ByName)
            if (entry.Type == type) return name;
        throw new ArgumentException($"Tensors of dtype {type} cannot be stored in safetensors by this library (supported: {string.Join(", ", ByName.Keys)}).", nameof(type));
    }

    public static int ElementSize(ScalarType type)
    {
        foreach (var entry in ByName.Values)
            if (entry.Type == type) return entry.Size;
        throw new ArgumentException($"Unsupported dtype {type}.", nameof(type));
    }
}
