using System.Diagnostics;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepAlign.Hosting;

/// <summary>
/// The model (and optional base model), tokenizer and chat template described by a <see cref="DeepAlignModelOptions"/>,
/// loaded once on first use and released by <see cref="Dispose"/>. The DI helpers register one as a singleton, so the
/// container loads it lazily and disposes the models with itself.
/// </summary>
/// <remarks>Loading is thread-safe (the first caller loads, the others wait); the loaded objects are shared.</remarks>
public sealed class DeepAlignModel : IDisposable
{
    private readonly object _lock = new();
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private Loaded? _loaded;
    private bool _disposed;

    /// <summary>Creates the holder; nothing is loaded until a member that needs the models is used.</summary>
    /// <param name="options">What to load (validated here).</param>
    /// <param name="loggerFactory">Optional logger factory (default <see cref="NullLoggerFactory.Instance"/>).</param>
    /// <exception cref="ArgumentException">Invalid options; the message names the field.</exception>
    public DeepAlignModel(DeepAlignModelOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = (options with { }).Validate(); // a private copy: later changes to the caller's instance do not leak in
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<DeepAlignModel>();
    }

    /// <summary>The validated options (a copy of the ones given).</summary>
    public DeepAlignModelOptions Options { get; }

    /// <summary>Whether the models have been loaded.</summary>
    public bool IsLoaded => Volatile.Read(ref _loaded) is not null;

    /// <summary>Whether <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Whether a base model is configured (the chat client then decodes contrastively).</summary>
    public bool IsContrastive => !string.IsNullOrWhiteSpace(Options.BaseModelDirectory);

    /// <summary>The served model (the aligned model in contrastive mode); loads on first use.</summary>
    public ICausalLanguageModel Model => Load().Model;

    /// <summary>The base model, or null when <see cref="DeepAlignModelOptions.BaseModelDirectory"/> is not set; loads on first use.</summary>
    public ICausalLanguageModel? BaseModel => Load().BaseModel;

    /// <summary>The model's tokenizer; loads on first use.</summary>
    public HfTokenizer Tokenizer => Load().Tokenizer;

    /// <summary>The chat template (<see cref="DeepAlignModelOptions.ChatFormat"/>); loads on first use.</summary>
    public ChatTemplate ChatTemplate => Load().Template;

    /// <summary>
    /// Creates a new chat client over the loaded models: contrastive when a base model is configured, else plain. The
    /// caller owns the client (its generator), not the models.
    /// </summary>
    /// <returns>The client.</returns>
    public DeepAlignChatClient CreateChatClient()
    {
        var loaded = Load();
        var clientOptions = new DeepAlignChatClientOptions
        {
            ModelId = Options.EffectiveModelId,
            DefaultMaxOutputTokens = Options.DefaultMaxOutputTokens,
        };
        var logger = _loggerFactory.CreateLogger<DeepAlignChatClient>();
        return loaded.BaseModel is { } baseModel
            ? DeepAlignChatClient.CreateContrastive(loaded.Model, baseModel, loaded.Tokenizer, loaded.Template, Options.Contrastive, clientOptions, logger)
            : DeepAlignChatClient.Create(loaded.Model, loaded.Tokenizer, loaded.Template, clientOptions, logger);
    }

    /// <summary>Disposes the loaded models (if any). Safe to call more than once.</summary>
    public void Dispose()
    {
        Loaded? loaded;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            loaded = _loaded;
            _loaded = null;
        }
        if (loaded is null) return;
        loaded.Model.Dispose();
        loaded.BaseModel?.Dispose();
        _logger.LogDebug("Released model {Model}.", Options.ModelDirectory);
    }

    private Loaded Load()
    {
        var loaded = Volatile.Read(ref _loaded);
        if (loaded is not null) return loaded;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _loaded ??= LoadNow();
        }
    }

    private Loaded LoadNow()
    {
        var options = Options;
        var stopwatch = Stopwatch.StartNew();
        var device = TorchRuntime.ResolveDevice(options.Device);
        var dtype = DeepAlignModelOptions.IsAutoDType(options.DType) ? InferencePrecision.DefaultFor(device) : CausalLanguageModel.ParseDType(options.DType);
        string modelDirectory = options.ModelDirectory!;
        var tokenizer = HfTokenizer.FromPretrained(modelDirectory);
        var template = ChatTemplate.For(tokenizer, ChatFormats.Parse(options.ChatFormat));
        if (IsContrastive) VocabularyCheck.EnsureSameTokenMap(modelDirectory, options.BaseModelDirectory!);
        var model = CausalLanguageModel.FromPretrained(modelDirectory, device, dtype);
        ICausalLanguageModel? baseModel = null;
        try
        {
            if (IsContrastive) baseModel = CausalLanguageModel.FromPretrained(options.BaseModelDirectory!, device, dtype);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        _logger.LogInformation("Loaded model {Model}{Base} on {Device} as {DType} in {Seconds:F2} s.",
            modelDirectory, baseModel is null ? "" : $" with base {options.BaseModelDirectory}", device, model.DType, stopwatch.Elapsed.TotalSeconds);
        return new Loaded(model, baseModel, tokenizer, template);
    }

    private sealed record Loaded(ICausalLanguageModel Model, ICausalLanguageModel? BaseModel, HfTokenizer Tokenizer, ChatTemplate Template);
}
