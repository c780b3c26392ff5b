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

    private static readonly JsonSerializerOptions ReadOptions = new()
    {
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
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
    public static CausalLMConfig ReadModelConfig(string path) => Read<CausalLMConfig>(Resolve(path, ConfigFileName));

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
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllBytes(path), ReadOptions)
                   ?? throw new CheckpointFormatException(path, "the file contains JSON null.");
        }
        catch (JsonException e)
        {
            string where = e.Path is null ? "" : $" at {e.Path}";
            throw new CheckpointFormatException(path, $"invalid JSON{where}: {e.Message}", e);
        }
    }

    private static void Write<T>(string path, T value) =>
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, WriteOptions) + "\n");
}
