using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepAlign.Models.Common;
using TorchSharp.Modules;
using DeepAlign.Runtime;
using DeepAlign.Checkpoints;
using static TorchSharp.torch;

namespace DeepAlign.Models.Lora;

/// <summary>
/// Adds LoRA adapters to a model's target projections, merges them into the weights, and saves or loads them in
/// PEFT's format (<c>adapter_model.safetensors</c> with keys <c>base_model.model.NAME.lora_A.weight</c> and
/// <c>...lora_B.weight</c>, plus <c>adapter_config.json</c>), so PEFT can load what this library trains.
/// </summary>
public static class LoraApplier
{
    /// <summary>PEFT's adapter weight file name.</summary>
    public const string AdapterWeightsFile = "adapter_model.safetensors";
    /// <summary>PEFT's adapter config file name.</summary>
    public const string AdapterConfigFile = "adapter_config.json";

    private sealed class AdapterSet
    {
        public required Action<string, nn.Module<Tensor, Tensor>> Replace;
        public readonly List<(string Name, LoraLinear Adapter)> Items = new();
    }

    private static readonly ConditionalWeakTable<ICausalLanguageModel, AdapterSet> Registry = new();

    /// <summary>
    /// Freezes every parameter of <paramref name="model"/> and wraps each target projection in a
    /// <see cref="LoraLinear"/> whose A and B are the only trainable parameters.
    /// </summary>
    /// <typeparam name="TModel">A causal LM that exposes its linear projections.</typeparam>
    /// <param name="model">The model, modified in place.</param>
    /// <param name="options">Rank, alpha, dropout, targets.</param>
    /// <returns>The module paths that were wrapped.</returns>
    /// <exception cref="ArgumentException">Invalid options, or no projection matches the targets.</exception>
    public static IReadOnlyList<string> Apply<TModel>(TModel model, LoraOptions options) where TModel : ICausalLanguageModel, ILinearLayerHost =>
        ApplyCore(model, model.NamedLinearLayers(), model.ReplaceLinear, options);

    /// <summary>Adds adapters to a Llama or Qwen2 model (see the generic overload).</summary>
    /// <param name="model">The model, modified in place.</param>
    /// <param name="options">Rank, alpha, dropout, targets.</param>
    /// <returns>The module paths that were wrapped.</returns>
    public static IReadOnlyList<string> Apply(DecoderOnlyCausalLM model, LoraOptions options) =>
        ApplyCore(model, model.NamedLinearLayers(), model.ReplaceLinear, options);

    private static IReadOnlyList<string> ApplyCore(ICausalLanguageModel model, IEnumerable<(string Name, Linear Module)> linears,
        Action<string, nn.Module<Tensor, Tensor>> replace, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options.Validate();
        if (Registry.TryGetValue(model, out var existing) && existing.Items.Count > 0)
            throw new InvalidOperationException("The model already has LoRA adapters; merge them first.");
        var all = linears.ToList();
        var targets = new HashSet<string>(options.TargetModules, StringComparer.Ordinal);
        var chosen = all.Where(l => targets.Contains(LastSegment(l.Name))).ToList();
        if (chosen.Count == 0)
            throw new ArgumentException($"No projection matches the LoRA targets [{string.Join(", ", options.TargetModules)}]; the model has [{string.Join(", ", all.Select(l => LastSegment(l.Name)).Distinct())}].", nameof(options));
        foreach (var (_, p) in model.NamedParameters()) p.requires_grad = false;
        using var generator = new Generator((ulong)options.InitSeed, CPU);
        var set = new AdapterSet { Replace = replace };
        foreach (var (name, linear) in chosen)
        {
            var adapter = new LoraLinear(linear.weight!, linear.bias, options.Rank, options.Alpha, options.Dropout, generator);
            replace(name, adapter);
            set.Items.Add((name, adapter));
        }
        Registry.AddOrUpdate(model, set);
        return set.Items.Select(i => i.Name).ToArray();
    }

    /// <summary>The adapters currently in <paramref name="model"/>, by module path.</summary>
    /// <param name="model">A model passed to <see cref="Apply{TModel}"/>.</param>
    public static IReadOnlyList<(string Name, LoraLinear Adapter)> Adapters(ICausalLanguageModel model) =>
        Registry.TryGetValue(model, out var set) ? set.Items.ToArray() : Array.Empty<(string, LoraLinear)>();

    /// <summary>
    /// Folds every adapter into its base weight (W + alpha / r B A) and puts a plain linear layer back in its place.
    /// Parameters stay frozen; outputs are unchanged up to rounding.
    /// </summary>
    /// <param name="model">A model with adapters.</param>
    /// <returns>How many adapters were merged.</returns>
    public static int Merge(ICausalLanguageModel model)
    {
        if (!Registry.TryGetValue(model, out var set)) return 0;
        int n = 0;
        foreach (var (name, adapter) in set.Items)
        {
            var w = adapter.BaseWeight;
            var linear = nn.Linear(w.shape[1], w.shape[0], hasBias: adapter.BaseBias is not null, device: w.device, dtype: w.dtype);
            using (no_grad())
            {
                using var merged = adapter.MergedWeight();
                linear.weight!.copy_(merged);
                if (adapter.BaseBias is not null) linear.bias!.copy_(adapter.BaseBias);
            }
            linear.weight!.requires_grad = false;
            if (linear.bias is not null) linear.bias.requires_grad = false;
            set.Replace(name, linear);
            n++;
        }
        set.Items.Clear();
        return n;
    }

    /// <summary>Writes the adapters in PEFT's format into <paramref name="directory"/> (created if needed; written atomically).</summary>
    /// <param name="model">A model with adapters.</param>
    /// <param name="options">The options the adapters were made with (for <c>adapter_config.json</c>).</param>
    /// <param name="directory">Output folder.</param>
    /// <param name="baseModelNameOrPath">Written as <c>base_model_name_or_path</c>.</param>
    public static void SaveAdapter(ICausalLanguageModel model, LoraOptions options, string directory, string? baseModelNameOrPath = null)
    {
        var adapters = Adapters(model);
        if (adapters.Count == 0) throw new InvalidOperationException("The model has no LoRA adapters to save.");
        var tensors = new List<(string, Tensor)>();
        foreach (var (name, a) in adapters)
        {
            tensors.Add(($"base_model.model.{name}.lora_A.weight", a.LoraA));
            tensors.Add(($"base_model.model.{name}.lora_B.weight", a.LoraB));
        }
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = options.Rank,
            ["lora_alpha"] = options.Alpha,
            ["lora_dropout"] = options.Dropout,
            ["target_modules"] = new JsonArray(options.TargetModules.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["use_rslora"] = false,
            ["inference_mode"] = true,
            ["base_model_name_or_path"] = baseModelNameOrPath,
        };
        AtomicDirectory.Write(directory, temp =>
        {
            TensorFile.Write(Path.Combine(temp, AdapterWeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            File.WriteAllText(Path.Combine(temp, AdapterConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    /// <summary>Reads <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> from <paramref name="directory"/>, applies adapters with those settings and loads their weights.</summary>
    /// <typeparam name="TModel">A causal LM that exposes its linear projections.</typeparam>
    /// <param name="model">The base model (without adapters).</param>
    /// <param name="directory">A PEFT adapter folder.</param>
    /// <returns>The options read from the config.</returns>
    /// <exception cref="InvalidDataException">The files are missing, malformed or do not match the model.</exception>
    public static LoraOptions LoadAdapter<TModel>(TModel model, string directory) where TModel : ICausalLanguageModel, ILinearLayerHost =>
        LoadAdapterCore(model, directory, o => Apply(model, o));

    /// <summary>Loads a PEFT adapter folder into a Llama or Qwen2 model (see the generic overload).</summary>
    /// <param name="model">The base model (without adapters).</param>
    /// <param name="directory">A PEFT adapter folder.</param>
    /// <returns>The options read from the config.</returns>
    public static LoraOptions LoadAdapter(DecoderOnlyCausalLM model, string directory) =>
        LoadAdapterCore(model, directory, o => Apply(model, o));

    private static LoraOptions LoadAdapterCore(ICausalLanguageModel model, string directory, Action<LoraOptions> apply)
    {
        var configPath = Path.Combine(directory, AdapterConfigFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"'{directory}' has no {AdapterConfigFile}.", configPath);
        LoraOptions options;
        try
        {
            var text = DeepAlign.Runtime.SafeFiles.ReadAllText(configPath, 16L * 1024 * 1024, (m, e) => new InvalidDataException(m, e)); // regular file, strict UTF-8
            var node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = DeepAlign.Runtime.SafeFiles.MaxJsonDepth }) ?? throw new InvalidDataException($"{configPath}: empty.");
            if ((string?)node["peft_type"] is string t && t != "LORA") throw new InvalidDataException($"{configPath}: peft_type is '{t}', only LORA is supported.");
            if ((bool?)node["use_rslora"] == true) throw new InvalidDataException($"{configPath}: use_rslora is not supported.");
            options = new LoraOptions
            {
                Rank = (int?)node["r"] ?? throw new InvalidDataException($"{configPath}: missing \"r\"."),
                Alpha = (double?)node["lora_alpha"] ?? throw new InvalidDataException($"{configPath}: missing \"lora_alpha\"."),
                Dropout = (double?)node["lora_dropout"] ?? 0.0,
                TargetModules = node["target_modules"] is JsonArray arr ? arr.Select(x => (string)x!).ToArray() : LoraOptions.DefaultTargets,
            };
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new InvalidDataException($"{configPath}: {e.Message}", e);
        }
        apply(options);
        var weightsPath = Path.Combine(directory, AdapterWeightsFile);
        var tensors = TensorFile.Read(weightsPath);
        try
        {
            using var _ = no_grad();
            foreach (var (name, a) in Adapters(model))
            {
                foreach (var (suffix, p) in new[] { ("lora_A", a.LoraA), ("lora_B", a.LoraB) })
                {
                    string key = $"base_model.model.{name}.{suffix}.weight";
                    if (!tensors.TryGetValue(key, out var t)) throw new InvalidDataException($"{weightsPath}: missing '{key}'.");
                    if (!t.shape.SequenceEqual(p.shape)) throw new InvalidDataException($"{weightsPath}: '{key}' has shape [{string.Join(",", t.shape)}], expected [{string.Join(",", p.shape)}].");
                    p.copy_(t);
                }
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        return options;
    }

    private static string LastSegment(string name) => name[(name.LastIndexOf('.') + 1)..];
}
