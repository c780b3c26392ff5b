using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Checkpoints;

/// <summary>
/// Reads one safetensors file (<see href="https://github.com/huggingface/safetensors">format</see>): an 8-byte
/// little-endian header length, a JSON header, then the raw little-endian tensor data.
/// </summary>
/// <remarks>
/// <para>This reader is our own rather than <c>TorchSharp.PyBridge</c>'s because DeepAlign needs (1) strict header
/// validation with typed, located errors (untrusted checkpoints: length bounds, dtype names, offsets inside the
/// data region, no overlaps, byte length = product of shape x element size), and (2) streaming loads: each tensor
/// is read straight from the file into a tensor's memory, one at a time, and copied into the destination parameter
/// (converting dtype and device on the way), so loading never holds the whole checkpoint in memory twice.</para>
/// <para>The header is validated completely in <see cref="Open"/>; data is read on demand. The file stays open
/// (shared for reading) until the object is disposed.</para>
/// </remarks>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (100 MB, as the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafetensorsTensorInfo> _tensors;
    private readonly long _dataStart;

    private SafetensorsFile(string path, SafeFileHandle handle, Dictionary<string, SafetensorsTensorInfo> tensors,
        IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        Path = path;
        _handle = handle;
        _tensors = tensors;
        Metadata = metadata;
        _dataStart = dataStart;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The header's <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor descriptions, sorted by name.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => _tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();

    /// <summary>Whether the file holds a tensor of this name.</summary>
    /// <param name="name">Tensor name.</param>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The description of one tensor.</summary>
    /// <param name="name">Tensor name.</param>
    /// <exception cref="KeyNotFoundException">No tensor of that name (the message names it and the file).</exception>
    public SafetensorsTensorInfo GetInfo(string name) =>
        _tensors.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>Opens a file and validates its header.</summary>
    /// <param name="path">Path of the <c>.safetensors</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="SafetensorsFormatException">The header is malformed (the message names the problem).</exception>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Safetensors file not found: {path}", path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength < 8)
                throw new SafetensorsFormatException(path, $"file is truncated: {fileLength} bytes, shorter than the 8-byte header length.");
            Span<byte> lengthBytes = stackalloc byte[8];
            ReadExactly(handle, lengthBytes, 0, path, "header length");
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerLength > MaxHeaderBytes)
                throw new SafetensorsFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit.");
            if ((long)headerLength > fileLength - 8)
                throw new SafetensorsFormatException(path, $"header length {headerLength} is larger than the file allows ({fileLength - 8} bytes after the length field); the file is truncated or corrupt.");
            var headerBytes = new byte[headerLength];
            ReadExactly(handle, headerBytes, 8, path, "header");
            long dataStart = 8 + (long)headerLength;
            var (tensors, metadata) = ParseHeader(path, headerBytes, fileLength - dataStart);
            return new SafetensorsFile(path, handle, tensors, metadata, dataStart);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafetensorsTensorInfo>, IReadOnlyDictionary<string, string>) ParseHeader(string path, byte[] headerBytes, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, $"header is not valid JSON ({e.Message}).", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, $"header must be a JSON object, found {doc.RootElement.ValueKind}.");
            var tensors = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (sawMetadata) throw new SafetensorsFormatException(path, "header has a duplicate '__metadata__' entry.");
                    sawMetadata = true;
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new SafetensorsFormatException(path, "'__metadata__' must be an object of strings.");
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new SafetensorsFormatException(path, $"'__metadata__' value for '{m.Name}' must be a string, found {m.Value.ValueKind}.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                if (tensors.ContainsKey(property.Name))
                    throw new SafetensorsFormatException(path, $"tensor '{property.Name}' appears twice in the header.");
                tensors[property.Name] = ParseTensor(path, property, dataLength);
            }

            // No two tensors may share bytes.
            SafetensorsTensorInfo? previous = null;
            foreach (var t in tensors.Values.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin).ThenBy(t => t.End))
            {
                if (previous is not null && t.Begin < previous.End)
                    throw new SafetensorsFormatException(path,
                        $"tensors '{previous.Name}' [{previous.Begin}, {previous.End}) and '{t.Name}' [{t.Begin}, {t.End}) overlap.");
                previous = t;
            }
            return (tensors, metadata);
        }
    }

    private static SafetensorsTensorInfo ParseTensor(string path, JsonProperty property, long dataLength)
    {
        string name = property.Name;
        var value = property.Value;
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, $"tensor '{name}': entry must be an object with dtype, shape and data_offsets.");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, $"tensor '{name}': missing or non-string 'dtype'.");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtypeName, out var scalarType, out int elementSize))
            throw new SafetensorsFormatException(path, $"tensor '{name}': unknown or unsupported dtype '{dtypeName}' (supported: {string.Join(", ", SafetensorsDType.Names)}).");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, $"tensor '{name}': missing or non-array 'shape'.");
        var shape = new List<long>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new SafetensorsFormatException(path, $"tensor '{name}': shape entries must be non-negative integers, found {d.GetRawText()}.");
            shape.Add(dim);
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
            throw new SafetensorsFormatException(path, $"tensor '{name}': 'data_offsets' must be an array [begin, end].");
        var offs = offsetsElement.EnumerateArray().ToArray();
        if (!offs[0].TryGetInt64(out long begin) || !offs[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new SafetensorsFormatException(path, $"tensor '{name}': invalid data_offsets {offsetsElement.GetRawText()} (need 0 <= begin <= end).");
        if (end > dataLength)
            throw new SafetensorsFormatException(path, $"tensor '{name}': data_offsets [{begin}, {end}) run past the end of the data region ({dataLength} bytes); the file is truncated or corrupt.");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * elementSize);
        }
        catch (OverflowException e)
        {
            throw new SafetensorsFormatException(path, $"tensor '{name}': shape [{string.Join(", ", shape)}] is too large.", e);
        }
        if (expected != end - begin)
            throw new SafetensorsFormatException(path,
                $"tensor '{name}': byte length {end - begin} does not match shape [{string.Join(", ", shape)}] x {elementSize} bytes ({dtypeName}) = {expected}.");
        return new SafetensorsTensorInfo(name, dtypeName, scalarType, shape.ToArray(), begin, end);
    }

    /// <summary>
    /// Loads one tensor, converting it to <paramref name="dtype"/> and placing it on <paramref name="device"/>.
    /// Only this tensor is read; peak extra memory is one CPU copy of it in the file's dtype.
    /// </summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dtype">Target element type (default: the file's).</param>
    /// <param name="device">Target device (default: CPU).</param>
    /// <returns>A new tensor owned by the caller (registered in the caller's dispose scope, if any).</returns>
    public Tensor Load(string name, ScalarType? dtype = null, Device? device = null)
    {
        var info = GetInfo(name);
        var staging = empty(info.Shape, dtype: info.ScalarType, device: CPU);
        try
        {
            ReadInto(info, staging);
            var targetType = dtype ?? info.ScalarType;
            var targetDevice = device ?? CPU;
            if (targetType == info.ScalarType && targetDevice.type == DeviceType.CPU) return staging;
            var converted = staging.to(targetType, targetDevice);
            staging.Dispose();
            return converted;
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies one tensor into an existing tensor (e.g. a model parameter) of the same shape, converting dtype and
    /// device as needed. A contiguous CPU destination of the file's dtype is filled directly from the file.
    /// </summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="destination">Tensor to overwrite; its shape must equal the stored shape.</param>
    /// <exception cref="CheckpointFormatException">The shapes differ (the message names the tensor and both shapes).</exception>
    public void LoadInto(string name, Tensor destination)
    {
        var info = GetInfo(name);
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new CheckpointFormatException(Path,
                $"tensor '{name}' has shape [{string.Join(", ", info.Shape)}] in the file but the model expects [{string.Join(", ", destination.shape)}].");
        using var noGrad = no_grad();
        if (destination.device_type == DeviceType.CPU && destination.dtype == info.ScalarType && destination.is_contiguous())
        {
            using var detached = destination.detach();
            ReadInto(info, detached);
            return;
        }
        using var staging = empty(info.Shape, dtype: info.ScalarType, device: CPU);
        ReadInto(info, staging);
        destination.copy_(staging);
    }

    private void ReadInto(SafetensorsTensorInfo info, Tensor target)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Safetensors loading needs a little-endian machine.");
        long total = info.ByteLength;
        if (total == 0) return;
        long fileOffset = _dataStart + info.Begin;
        const long chunkBytes = 1L << 30;
        if (total <= chunkBytes)
        {
            ReadExactly(_handle, target.bytes, fileOffset, Path, $"tensor '{info.Name}'");
            return;
        }
        int elementSize = (int)(total / info.ElementCount);
        using var flat = target.view(-1);
        long chunkElements = chunkBytes / elementSize;
        for (long start = 0; start < info.ElementCount; start += chunkElements)
        {
            long n = Math.Min(chunkElements, info.ElementCount - start);
            using var part = flat.narrow(0, start, n);
            ReadExactly(_handle, part.bytes, fileOffset + start * elementSize, Path, $"tensor '{info.Name}'");
        }
    }

    private static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset, string path, string what)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[done..], offset + done);
            if (n == 0) throw new SafetensorsFormatException(path, $"file is truncated while reading {what} at byte {offset + done}.");
            done += n;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();
}
