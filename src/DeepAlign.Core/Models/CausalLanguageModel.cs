using DeepAlign.Checkpoints;
using DeepAlign.Models.Common;
using DeepAlign.Models.Llama;
using DeepAlign.Models.Qwen2;
using DeepAlign.Runtime;
using TorchSharp;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models;

/// <summary>
/// Entry points for the built-in model families: load a Hugging Face folder (<see cref="FromPretrained"/>) or build a
/// randomly initialised model from a config (<see cref="Create"/>). Dispatches on <c>model_type</c>
/// (<c>llama</c> → <see cref="LlamaForCausalLM"/>, <c>qwen2</c> → <see cref="Qwen2ForCausalLM"/>).
/// </summary>
public static class CausalLanguageModel
{
    /// <summary>The <c>model_type</c> values this library can build.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = new[] { "llama", "qwen2" };

    /// <summary>
    /// Loads a model from a Hugging Face folder: <c>config.json</c> plus <c>model.safetensors</c> or a sharded
    /// <c>model.safetensors.index.json</c> (and <c>generation_config.json</c> if present). Weights stored as bf16, fp16
    /// or fp32 are converted to <paramref name="dtype"/> tensor by tensor while loading.
    /// </summary>
    /// <param name="directory">The model folder.</param>
    /// <param name="device">Where to place the weights; default: CUDA when available, else CPU.</param>
    /// <param name="dtype">Weight/compute dtype; default: float32 on CPU, else the config's <c>torch_dtype</c> (float32 if absent).</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json or the weights are missing.</exception>
    /// <exception cref="ModelConfigException">config.json is malformed, out of bounds, unsupported or disagrees with the checkpoint header (message names the file and key).</exception>
    /// <exception cref="CheckpointFormatException">Malformed files, or missing/unexpected/mis-shaped tensors (message names the key).</exception>
    /// <returns>The model, in evaluation mode (call <c>SetTrainingMode(true)</c> to train).</returns>
    public static DecoderOnlyCausalLM FromPretrained(string directory, Device? device = null, ScalarType? dtype = null)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"Model folder not found: {directory}");
        var configPath = Path.Combine(directory, HfConfigFiles.ConfigFileName);
        var config = HfConfigFiles.ReadModelConfig(configPath);
        device ??= TorchRuntime.ResolveDevice(null);
        dtype ??= device.type == DeviceType.CPU ? ScalarType.Float32 : ParseDType(config.TorchDtype) ?? ScalarType.Float32;
        using var checkpoint = SafetensorsCheckpoint.Open(directory);
        ModelLoadPreflight.Check(configPath, config, checkpoint); // before any module is allocated
        var model = Build(config, device, dtype.Value);
        try
        {
            model.LoadWeights(checkpoint);
            model.GenerationConfig = HfConfigFiles.TryReadGenerationConfig(directory);
            model.SetTrainingMode(false); // eval mode: no dropout, so two identical runs agree
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds a model with random weights as transformers initialises them: linear and embedding weights drawn from
    /// N(0, <c>initializer_range</c>) (0.02 by default), biases zero, norm weights one. With a seed the weights are
    /// identical on every device and run (drawn in float32 on the CPU, then converted).
    /// </summary>
    /// <param name="config">Architecture; <c>model_type</c> selects the family.</param>
    /// <param name="device">Where to place the weights; default: CUDA when available, else CPU.</param>
    /// <param name="dtype">Weight dtype; default float32.</param>
    /// <param name="seed">Random seed; null for a random one.</param>
    /// <exception cref="NotSupportedException">Unsupported <c>model_type</c> or option.</exception>
    /// <exception cref="ArgumentException">Invalid sizes (message names the key).</exception>
    public static DecoderOnlyCausalLM Create(CausalLMConfig config, Device? device = null, ScalarType? dtype = null, long? seed = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        device ??= TorchRuntime.ResolveDevice(null);
        var model = Build(config, device, dtype ?? ScalarType.Float32);
        model.InitializeWeights(seed ?? Random.Shared.NextInt64(long.MaxValue));
        return model;
    }

    private static DecoderOnlyCausalLM Build(CausalLMConfig config, Device device, ScalarType dtype) => config.ModelType switch
    {
        "llama" => new LlamaForCausalLM(config, device, dtype),
        "qwen2" => new Qwen2ForCausalLM(config, device, dtype),
        _ => throw new NotSupportedException(
            $"Config key 'model_type' = '{config.ModelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})."),
    };

    /// <summary>Parses a <c>torch_dtype</c> / command-line dtype name (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>, also <c>fp32</c>, <c>bf16</c>, <c>fp16</c>).</summary>
    /// <param name="name">The name; null or empty gives null.</param>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static ScalarType? ParseDType(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "float32" or "fp32" or "float" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" or "half" => ScalarType.Float16,
        "float64" or "fp64" or "double" => ScalarType.Float64,
        _ => throw new ArgumentException($"Unknown dtype '{name}' (use float32, bfloat16 or float16).", nameof(name)),
    };

    /// <summary>As <see cref="ParseDType(string?)"/>, plus <c>auto</c>: the documented inference default for
    /// <paramref name="device"/> (<see cref="Runtime.InferencePrecision.DefaultFor"/>: bfloat16 on CPUs with native
    /// bfloat16, else float32; the checkpoint's dtype on other devices).</summary>
    /// <param name="name">A dtype name, <c>auto</c>, or null/empty for the loader's default.</param>
    /// <param name="device">The device the model will run on.</param>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static ScalarType? ParseDType(string? name, Device device) =>
        string.Equals(name?.Trim(), "auto", StringComparison.OrdinalIgnoreCase) ? Runtime.InferencePrecision.DefaultFor(device) : ParseDType(name);

    /// <summary>The <c>torch_dtype</c> spelling of a dtype (<c>float32</c>, <c>bfloat16</c>, <c>float16</c>, <c>float64</c>).</summary>
    /// <param name="dtype">A floating dtype.</param>
    public static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => throw new ArgumentException($"{dtype} is not a model dtype.", nameof(dtype)),
    };
}
