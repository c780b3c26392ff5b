using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// Minimal safetensors reading and writing for the trainer's own files (trainable weights, optimiser moments,
/// adapters): little-endian u64 header length, JSON header (<c>dtype</c>, <c>shape</c>, <c>data_offsets</c>,
/// optional <c>__metadata__</c>), then the raw tensor bytes. Headers are validated on read.
/// </summary>
internal static class TensorFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var datas = new List<byte[]>(items.Count);
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, t) in items)
        {
            using var c = t.detach().contiguous().cpu();
            var bytes = c.bytes.ToArray();
            header[name] = new Dictionary<string, object>
            {
                ["dtype"] = DTypeName(t.dtype, name),
                ["shape"] = t.shape,
                ["data_offsets"] = new[] { offset, offset + bytes.Length },
            };
            offset += bytes.Length;
            datas.Add(bytes);
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8;
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        Span<byte> len = stackalloc byte[8];
        BitConverter.TryWriteBytes(len, (ulong)(json.Length + pad));
        fs.Write(len);
        fs.Write(json);
        for (int i = 0; i < pad; i++) fs.WriteByte((byte)' ');
        foreach (var d in datas) fs.Write(d);
        fs.Flush(flushToDisk: true);
    }

    public static Dictionary<string, Tensor> Read(string path, Device? device = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Tensor file '{path}' does not exist.", path);
        using var fs = File.OpenRead(path);
        var lenBytes = new byte[8];
        if (fs.Read(lenBytes, 0, 8) != 8) throw new InvalidDataException($"{path}: file too short for a safetensors header.");
        ulong headerLen = BitConverter.ToUInt64(lenBytes);
        if (headerLen == 0 || headerLen > (ulong)MaxHeaderBytes || (long)headerLen > fs.Length - 8)
            throw new InvalidDataException($"{path}: header length {headerLen} is out of bounds.");
        var headerBytes = new byte[headerLen];
        fs.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLen;
        long dataLen = fs.Length - dataStart;
        using var doc = JsonDocument.Parse(headerBytes);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__") continue;
                var dtype = ParseDType(prop.Value.GetProperty("dtype").GetString(), path, prop.Name);
                var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var offs = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                long numel = shape.Aggregate(1L, (a, b) => a * b);
                if (offs.Length != 2 || offs[0] < 0 || offs[1] < offs[0] || offs[1] > dataLen || offs[1] - offs[0] != numel * ElementSize(dtype))
                    throw new InvalidDataException($"{path}: tensor '{prop.Name}' has offsets inconsistent with its shape or the file size.");
                var bytes = new byte[offs[1] - offs[0]];
                fs.Seek(dataStart + offs[0], SeekOrigin.Begin);
                fs.ReadExactly(bytes);
                var t = empty(shape, dtype: dtype);
                t.bytes = bytes;
                result[prop.Name] = device is null || device.type == DeviceType.CPU ? t : t.to(device);
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var fs = File.OpenRead(path);
        var lenBytes = new byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLen = BitConverter.ToUInt64(lenBytes);
        if (headerLen == 0 || headerLen > (ulong)MaxHeaderBytes || (long)headerLen > fs.Length - 8)
            throw new InvalidDataException($"{path}: header length {headerLen} is out of bounds.");
        var headerBytes = new byte[headerLen];
        fs.ReadExactly(headerBytes);
        using var doc = JsonDocument.Parse(headerBytes);
        var meta = new Dictionary<string, string>();
        if (doc.RootElement.TryGetProperty("__metadata__", out var m))
            foreach (var p in m.EnumerateObject()) meta[p.Name] = p.Value.GetString() ?? "";
        return meta;
    }

    private static string DTypeName(ScalarType t, string name) => t switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"Tensor '{name}' has dtype {t}, which cannot be written to safetensors."),
    };

    private static ScalarType ParseDType(string? s, string path, string name) => s switch
    {
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "F64" => ScalarType.Float64,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new InvalidDataException($"{path}: tensor '{name}' has unknown dtype '{s}'."),
    };

    private static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 => 2,
        _ => 1,
    };
}
