using System.Text.Json;
using static TorchSharp.torch;

namespace DeepAlign.Checkpoints;

/// <summary>
/// The weights of a Hugging Face model folder: either one <c>model.safetensors</c> or shards listed in
/// <c>model.safetensors.index.json</c>. Every file's header is validated when the checkpoint is opened; tensors
/// are then read one at a time.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _byTensor;

    private SafetensorsCheckpoint(string directory, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> byTensor)
    {
        Directory = directory;
        _files = files;
        _byTensor = byTensor;
    }

    /// <summary>The model folder.</summary>
    public string Directory { get; }

    /// <summary>The safetensors files making up the checkpoint.</summary>
    public IReadOnlyList<string> Files => _files.Select(f => f.Path).ToList();

    /// <summary>All tensor names, sorted.</summary>
    public IReadOnlyList<string> TensorNames => _byTensor.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();

    /// <summary>Opens the weights of a model folder (<c>model.safetensors</c> preferred, else the sharded index).</summary>
    /// <param name="directory">The model folder.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">Neither weight layout is present, or a shard named by the index is missing.</exception>
    /// <exception cref="SafetensorsFormatException">A header or the index is malformed.</exception>
    public static SafetensorsCheckpoint Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DirectoryNotFoundException($"Model folder not found: {directory}");
        string single = Path.Combine(directory, SafetensorsWriter.SingleFileName);
        string index = Path.Combine(directory, SafetensorsWriter.IndexFileName);
        var files = new List<SafetensorsFile>();
        var byTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(single))
            {
                var file = SafetensorsFile.Open(single);
                files.Add(file);
                foreach (var t in file.Tensors) byTensor[t.Name] = file;
            }
            else if (File.Exists(index))
            {
                var weightMap = ReadIndex(index);
                var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
                foreach (var (tensor, fileName) in weightMap)
                {
                    if (!opened.TryGetValue(fileName, out var file))
                    {
                        string shardPath = Path.Combine(directory, fileName);
                        if (!File.Exists(shardPath))
                            throw new SafetensorsFormatException(index, $"shard file '{fileName}' (holding tensor '{tensor}') is missing from {directory}.");
                        file = SafetensorsFile.Open(shardPath);
                        opened[fileName] = file;
                        files.Add(file);
                    }
                    if (!file.Contains(tensor))
                        throw new SafetensorsFormatException(index, $"tensor '{tensor}' is mapped to '{fileName}' but that shard does not contain it.");
                    byTensor[tensor] = file;
                }
                foreach (var file in files)
                    foreach (var t in file.Tensors)
                        if (!byTensor.ContainsKey(t.Name))
                            throw new SafetensorsFormatException(index, $"tensor '{t.Name}' is stored in '{Path.GetFileName(file.Path)}' but missing from the weight_map.");
            }
            else
            {
                throw new FileNotFoundException(
                    $"No weights in {directory}: expected {SafetensorsWriter.SingleFileName} or {SafetensorsWriter.IndexFileName} (PyTorch .bin checkpoints are not read: they require unpickling).",
                    single);
            }
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
        return new SafetensorsCheckpoint(directory, files, byTensor);
    }

    private static List<(string Tensor, string File)> ReadIndex(string path)
    {
        // Strict UTF-8, no lone surrogates, bounded depth and size, regular file only (DeepAlign.Runtime.SafeFiles).
        var doc = DeepAlign.Runtime.SafeFiles.ReadJson(path, (m, e) => new SafetensorsFormatException(path,
            (e is JsonException ? "index is not valid JSON: " : "index: ") + m[(path.Length + 2)..], e), maxBytes: 256L * 1024 * 1024);
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, "index must be an object with a 'weight_map' object.");
            var result = new List<(string, string)>();
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException(path, $"weight_map entry '{entry.Name}' must be a file name string.");
                string file = entry.Value.GetString()!;
                if (file.Length == 0 || file != Path.GetFileName(file) || file.Contains(".."))
                    throw new SafetensorsFormatException(path, $"weight_map entry '{entry.Name}' names an invalid shard file '{file}' (must be a plain file name in the folder).");
                result.Add((entry.Name, file));
            }
            if (result.Count == 0) throw new SafetensorsFormatException(path, "weight_map is empty.");
            return result;
        }
    }

    /// <summary>Whether the checkpoint holds a tensor of this name.</summary>
    /// <param name="name">Tensor name.</param>
    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <summary>The description of one tensor.</summary>
    /// <param name="name">Tensor name.</param>
    public SafetensorsTensorInfo GetInfo(string name) => FileOf(name).GetInfo(name);

    /// <summary>Loads one tensor (see <see cref="SafetensorsFile.Load"/>).</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="dtype">Target element type (default: stored).</param>
    /// <param name="device">Target device (default: CPU).</param>
    public Tensor Load(string name, ScalarType? dtype = null, Device? device = null) => FileOf(name).Load(name, dtype, device);

    /// <summary>Copies one tensor into an existing tensor of the same shape (see <see cref="SafetensorsFile.LoadInto"/>).</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="destination">Destination tensor.</param>
    public void LoadInto(string name, Tensor destination) => FileOf(name).LoadInto(name, destination);

    private SafetensorsFile FileOf(string name) =>
        _byTensor.TryGetValue(name, out var file) ? file : throw new KeyNotFoundException($"{Directory}: the checkpoint has no tensor named '{name}'.");

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
