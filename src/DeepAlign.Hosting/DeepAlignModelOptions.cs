using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;
using DeepAlign.Configuration;

namespace DeepAlign.Hosting;

/// <summary>
/// What <see cref="DeepAlignServiceCollectionExtensions.AddDeepAlignModel(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{DeepAlignModelOptions})"/>
/// loads: a Hugging Face model folder (weights, config, tokenizer and chat template), optionally a base model folder
/// for contrastive decoding, and where and how to run them.
/// </summary>
/// <remarks>
/// Unlike DeepAlign's algorithm options this record has settable properties, as the Microsoft.Extensions options
/// pattern (<c>Configure(o =&gt; ...)</c>, configuration binding) needs. <see cref="Validate"/> runs when the container
/// starts (<c>ValidateOnStart</c>) and again before anything is loaded.
/// </remarks>
public sealed record DeepAlignModelOptions
{
    /// <summary>
    /// The model folder (<c>config.json</c>, safetensors weights, <c>tokenizer.json</c>, <c>tokenizer_config.json</c>
    /// with the chat template). With <see cref="BaseModelDirectory"/> set this is the aligned (expert) model. Required.
    /// </summary>
    public string? ModelDirectory { get; set; }

    /// <summary>
    /// Optional base (amateur) model folder. When set, the chat client decodes contrastively between
    /// <see cref="ModelDirectory"/> (aligned) and this model with <see cref="Contrastive"/>; both must share the tokenizer.
    /// </summary>
    public string? BaseModelDirectory { get; set; }

    /// <summary>Device: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>, or null / <c>auto</c> for CUDA when available, else CPU (<see cref="TorchRuntime.ResolveDevice"/>).</summary>
    public string? Device { get; set; }

    /// <summary>Weight dtype: <c>float32</c>, <c>bfloat16</c>, <c>float16</c>, or <c>auto</c> for the documented inference
    /// default (<see cref="InferencePrecision.DefaultFor"/>: bfloat16 on CPUs with native bfloat16, else float32; the
    /// config's <c>torch_dtype</c> on CUDA); null for float32 on CPU, else the config's <c>torch_dtype</c>.</summary>
    public string? DType { get; set; }

    /// <summary>Chat template: <c>auto</c> (the one in tokenizer_config.json, the default) or a built-in format name (<see cref="ChatFormats.Names"/>).</summary>
    public string ChatFormat { get; set; } = "auto";

    /// <summary>Contrastive decoding options, used only with <see cref="BaseModelDirectory"/>. Default docs/method.md's defaults.</summary>
    public ContrastiveDecoderOptions Contrastive { get; set; } = new();

    /// <summary>The model id the chat client reports; null for the model folder's name.</summary>
    public string? ModelId { get; set; }

    /// <summary>Generated-token cap of chat requests that set no <c>MaxOutputTokens</c>. Default 256.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 256;

    /// <summary>The model id the chat client reports: <see cref="ModelId"/>, else the model folder's name.</summary>
    public string EffectiveModelId =>
        ModelId ?? (string.IsNullOrWhiteSpace(ModelDirectory) ? "deepalign" : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(ModelDirectory))));

    /// <summary>
    /// Throws <see cref="ArgumentException"/> naming the first invalid field (<c>DeepAlignModelOptions.Field: ...</c>):
    /// missing folders or files, an unknown device, dtype or chat format, invalid contrastive options.
    /// </summary>
    /// <returns>This instance, for chaining.</returns>
    public DeepAlignModelOptions Validate()
    {
        CheckFolder(ModelDirectory, nameof(ModelDirectory), required: true);
        CheckFolder(BaseModelDirectory, nameof(BaseModelDirectory), required: false);
        if (Device is not null && !string.IsNullOrWhiteSpace(Device) && !Device.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            try { TorchRuntime.ResolveDevice(Device); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                throw new ArgumentException($"DeepAlignModelOptions.Device: {e.Message}", nameof(Device), e);
            }
        }
        try { if (!IsAutoDType(DType)) CausalLanguageModel.ParseDType(DType); }
        catch (ArgumentException e) { throw new ArgumentException($"DeepAlignModelOptions.DType: {e.Message}", nameof(DType), e); }
        if (ChatFormat is null) throw new ArgumentException("DeepAlignModelOptions.ChatFormat must not be null (use \"auto\").", nameof(ChatFormat));
        try { ChatFormats.Parse(ChatFormat); }
        catch (ArgumentException e) { throw new ArgumentException($"DeepAlignModelOptions.ChatFormat: {e.Message}", nameof(ChatFormat), e); }
        if (Contrastive is null) throw new ArgumentException("DeepAlignModelOptions.Contrastive must not be null.", nameof(Contrastive));
        try { Contrastive.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"DeepAlignModelOptions.Contrastive: {e.Message}", nameof(Contrastive), e); }
        if (ModelId is not null && string.IsNullOrWhiteSpace(ModelId))
            throw new ArgumentException("DeepAlignModelOptions.ModelId must not be blank when set.", nameof(ModelId));
        if (DefaultMaxOutputTokens < 1)
            throw new ArgumentException($"DeepAlignModelOptions.DefaultMaxOutputTokens must be at least 1; got {DefaultMaxOutputTokens}.", nameof(DefaultMaxOutputTokens));
        return this;
    }

    private static void CheckFolder(string? directory, string field, bool required)
    {
        if (string.IsNullOrWhiteSpace(directory))
        {
            if (required)
                throw new ArgumentException($"DeepAlignModelOptions.{field} is required: the Hugging Face folder of the model to serve.", field);
            return;
        }
        if (!Directory.Exists(directory))
            throw new ArgumentException($"DeepAlignModelOptions.{field}: folder '{directory}' does not exist.", field);
        // Both folders need their tokenizer: the pair's token-to-id maps are compared when loading.
        foreach (var file in new[] { HfConfigFiles.ConfigFileName, "tokenizer.json" })
            if (!File.Exists(Path.Combine(directory, file)))
                throw new ArgumentException($"DeepAlignModelOptions.{field}: folder '{directory}' has no {file}.", field);
    }

    internal static bool IsAutoDType(string? dtype) => string.Equals(dtype?.Trim(), "auto", StringComparison.OrdinalIgnoreCase);
}
