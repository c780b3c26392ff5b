using DeepAlign.Runtime;
using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace DeepAlign.Checkpoints;

/// <summary>
/// Writes safetensors files the way Hugging Face does: tensors sorted by name and stored contiguously in that
/// order, the JSON header padded with spaces to a multiple of 8 bytes, <c>{"format": "pt"}</c> metadata by default.
/// Every file is written to a temporary file in the same directory and renamed into place, so a crash never leaves
/// a half-written checkpoint under the final name.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>File name of an unsharded checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>File name of a sharded checkpoint's index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>Writes one safetensors file atomically.</summary>
    /// <param name="path">Destination path (replaced if it exists).</param>
    /// <param name="tensors">Named tensors (any device; copied to CPU one at a time). Names must be unique.</param>
    /// <param name="metadata">The <c>__metadata__</c> map; defaults to <c>{"format": "pt"}</c>.</param>
    /// <exception cref="ArgumentException">Duplicate names or an unsupported dtype.</exception>
    public static void Save(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        for (int i = 1; i < list.Count; i++)
            if (list[i].Name == list[i - 1].Name) throw new ArgumentException($"Tensor name '{list[i].Name}' appears twice.", nameof(tensors));
        metadata ??= new Dictionary<string, string> { ["format"] = "pt" };

        byte[] header = BuildHeader(list, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var (_, tensor) in list) WriteData(stream, tensor);
        });
    }

    /// <summary>
    /// Writes a checkpoint's weights into <paramref name="directory"/>: one <c>model.safetensors</c> when everything fits
    /// in <paramref name="maxShardBytes"/> (or no limit is given), else shards named
    /// <c>model-00001-of-0000N.safetensors</c> plus <c>model.safetensors.index.json</c>
    /// (<c>{"metadata": {"total_size": N}, "weight_map": {name: file}}</c>). Stale weight files of the other layout
    /// are removed, so the folder holds exactly one checkpoint.
    /// </summary>
    /// <param name="directory">Destination folder (created if needed).</param>
    /// <param name="tensors">Named tensors.</param>
    /// <param name="maxShardBytes">Largest shard size in bytes (a single larger tensor gets a shard of its own); null for one file.</param>
    /// <returns>The file names written (shards, then the index if any).</returns>
    public static IReadOnlyList<string> SaveCheckpoint(string directory, IEnumerable<(string Name, Tensor Tensor)> tensors, long? maxShardBytes = null)
    {
        if (maxShardBytes is <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), maxShardBytes, "Shard size must be positive.");
        Directory.CreateDirectory(directory);
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long current = 0, total = 0;
        foreach (var item in list)
        {
            long bytes = item.Tensor.NumberOfElements * SafetensorsDType.ElementSize(item.Tensor.dtype);
            total += bytes;
            if (maxShardBytes is long limit && current > 0 && current + bytes > limit)
            {
                shards.Add(new());
                current = 0;
            }
            shards[^1].Add(item);
            current += bytes;
        }

        var written = new List<string>();
        foreach (var stale in Directory.EnumerateFiles(directory, "model-*-of-*.safetensors"))
            File.Delete(stale);
        if (shards.Count == 1)
        {
            Save(Path.Combine(directory, SingleFileName), shards[0]);
            File.Delete(Path.Combine(directory, IndexFileName));
            written.Add(SingleFileName);
            return written;
        }

        File.Delete(Path.Combine(directory, SingleFileName));
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string name = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Save(Path.Combine(directory, name), shards[i]);
            foreach (var (tensorName, _) in shards[i]) weightMap[tensorName] = name;
            written.Add(name);
        }
        AtomicFile.Write(Path.Combine(directory, IndexFileName), stream =>
        {
            using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            writer.WriteStartObject();
            writer.WriteStartObject("metadata");
            writer.WriteNumber("total_size", total);
            writer.WriteEndObject();
            writer.WriteStartObject("weight_map");
            foreach (var (k, v) in weightMap) writer.WriteString(k, v);
            writer.WriteEndObject();
            writer.WriteEndObject();
        });
        written.Add(IndexFileName);
        return written;
    }

    private static byte[] BuildHeader(List<(string Name, Tensor Tensor)> list, IReadOnlyDictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in list)
            {
                string dtype = SafetensorsDType.NameOf(tensor.dtype);
                long bytes = tensor.NumberOfElements * SafetensorsDType.ElementSize(tensor.dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in tensor.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int length = (int)buffer.Length;
        int padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    private static void WriteData(Stream stream, Tensor tensor)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Safetensors writing needs a little-endian machine.");
        if (tensor.NumberOfElements == 0) return;
        using var detached = tensor.detach();
        using var cpu = detached.cpu();
        using var contiguous = cpu.contiguous();
        const long chunkBytes = 1L << 30;
        long elementSize = SafetensorsDType.ElementSize(tensor.dtype);
        long totalBytes = contiguous.NumberOfElements * elementSize;
        if (totalBytes <= chunkBytes)
        {
            stream.Write(contiguous.bytes);
            return;
        }
        using var flat = contiguous.view(-1);
        long chunkElements = chunkBytes / elementSize;
        for (long start = 0; start < flat.NumberOfElements; start += chunkElements)
        {
            using var part = flat.narrow(0, start, Math.Min(chunkElements, flat.NumberOfElements - start));
            stream.Write(part.bytes);
        }
    }
}
