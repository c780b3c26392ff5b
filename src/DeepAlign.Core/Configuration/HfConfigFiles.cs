using DeepAlign.Runtime;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeepAlign.Checkpoints;

namespace DeepAlign.Configuration;

/// <summary>Reads and writes the JSON files of a Hugging Face model folder (<c>config.json</c>, <c>generation_config.json</c>).</summary>
public static class HfConfigFiles
{
    /// <summary>Name of the architecture file.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>Name of the decoding-defaults file.</summary>
    public const string GenerationConfigFileName = "generation_config.json";

    // Numbers must be JSON numbers: named literals ("NaN", "Infinity") are refused, so a non-finite value can never be
    // read from a file (docs/reliability.md). Depth is bounded.
    private static readonly JsonSerializerOptions ReadOptions = new()
    {
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        MaxDepth = DeepAlign.Runtime.SafeFiles.MaxJsonDepth,
    };

    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Reads a <c>config.json</c> file.</summary>
    /// <param name="path">The file, or a model folder containing it.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The JSON is invalid or a value has the wrong type (the message names the file and the JSON path).</exception>
    public static CausalLMConfig ReadModelConfig(string path)
    {
        var file = Resolve(path, ConfigFileName);
        var config = Read<CausalLMConfig>(file);
        if (config.ExtensionData is { } extra)
            foreach (var (key, value) in extra)
                if (value.ValueKind == JsonValueKind.Number && !double.IsFinite(value.GetDouble()))
                    throw new ModelConfigException(file, key, $"config key '{key}' is not a finite number.");
        return config;
    }

    /// <summary>
    /// Checks a config read from <paramref name="path"/> as model construction would (bounds, finite numbers,
    /// overflow-checked sizes, supported options), without building anything.
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <param name="path">The file it came from (named in the error).</param>
    /// <exception cref="ModelConfigException">A value is out of bounds or unsupported (the message names the file and key).</exception>
    public static void ValidateModelConfig(CausalLMConfig config, string path)
    {
        ArgumentNullException.ThrowIfNull(config);
        ConfigValidation.ValidateFile(config, config.ModelType, path);
    }

    /// <summary>Writes a <c>config.json</c> file atomically.</summary>
    /// <param name="path">The file, or a model folder to write it into.</param>
    /// <param name="config">The configuration.</param>
    public static void WriteModelConfig(string path, CausalLMConfig config) => Write(Resolve(path, ConfigFileName), config);

    /// <summary>Reads a <c>generation_config.json</c> file.</summary>
    /// <param name="path">The file, or a model folder containing it.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The JSON is invalid.</exception>
    public static GenerationConfig ReadGenerationConfig(string path) => Read<GenerationConfig>(Resolve(path, GenerationConfigFileName));

    /// <summary>Reads <c>generation_config.json</c> from a model folder if present.</summary>
    /// <param name="directory">The model folder.</param>
    /// <returns>The configuration, or null when the folder has none.</returns>
    public static GenerationConfig? TryReadGenerationConfig(string directory)
    {
        string path = Path.Combine(directory, GenerationConfigFileName);
        return File.Exists(path) ? Read<GenerationConfig>(path) : null;
    }

    /// <summary>Writes a <c>generation_config.json</c> file atomically.</summary>
    /// <param name="path">The file, or a model folder to write it into.</param>
    /// <param name="config">The configuration.</param>
    public static void WriteGenerationConfig(string path, GenerationConfig config) => Write(Resolve(path, GenerationConfigFileName), config);

    private static string Resolve(string path, string fileName) =>
        Directory.Exists(path) ? Path.Combine(path, fileName) : path;

    private static T Read<T>(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"File not found: {path}", path);
        CheckpointFormatException Error(string? key, string message, Exception? inner) =>
            typeof(T) == typeof(CausalLMConfig) ? new ModelConfigException(path, key, message, inner) : new CheckpointFormatException(path, message, inner);
        var bytes = DeepAlign.Runtime.SafeFiles.ReadAllBytes(path, 64L * 1024 * 1024, (m, e) => Error(null, m[(path.Length + 2)..], e));
        DeepAlign.Runtime.SafeFiles.ValidateJsonText(bytes, "the file", (m, e) => Error(null, m, e));
        try
        {
            return JsonSerializer.Deserialize<T>(bytes, ReadOptions)
                   ?? throw Error(null, "the file contains JSON null.", null);
        }
        catch (JsonException e)
        {
            string where = e.Path is null ? "" : $" at {e.Path}";
            throw Error(e.Path, $"invalid JSON{where}: {e.Message}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException or NotSupportedException)
        {
            throw Error(null, $"invalid value: {e.Message}", e);
        }
    }

    private static void Write<T>(string path, T value) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, WriteOptions) + "\n");
}
