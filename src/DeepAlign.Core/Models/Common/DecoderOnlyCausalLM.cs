using DeepAlign.Checkpoints;
using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models.Common;

/// <summary>
/// The shared decoder-only transformer behind <see cref="Llama.LlamaForCausalLM"/> and
/// <see cref="Qwen2.Qwen2ForCausalLM"/>: token embedding, pre-norm decoder layers (RMSNorm, rotary grouped-query
/// attention, gated SiLU MLP), final norm and an output head that may share the embedding matrix.
/// Parameter names equal Hugging Face checkpoint keys (<c>model.layers.0.self_attn.q_proj.weight</c>, ...).
/// </summary>
/// <remarks>
/// Numerics: RMSNorm in float32 (cast back to the weight dtype, as <c>LlamaRMSNorm</c>), RoPE tables in float32,
/// attention through <c>scaled_dot_product_attention</c>, logits returned in float32.
/// Not thread-safe: one forward at a time per instance.
/// </remarks>
public abstract class DecoderOnlyCausalLM : ICausalLanguageModel
{
    private static readonly string[] ProjectionNames = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };

    private readonly CausalLMRoot _root;
    private readonly RotaryEmbedding _rope;
    private bool _disposed;

    private protected DecoderOnlyCausalLM(CausalLMConfig config, DecoderArchitecture architecture, Device device, ScalarType dtype)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"Model dtype must be a floating type (float32, bfloat16, float16), got {dtype}.", nameof(dtype));
        Config = config;
        Device = device;
        DType = dtype;
        _rope = new RotaryEmbedding(config, device);
        _root = new CausalLMRoot(config, architecture, device, dtype);
    }

    /// <inheritdoc />
    public CausalLMConfig Config { get; }

    /// <inheritdoc />
    public Device Device { get; }

    /// <inheritdoc />
    public ScalarType DType { get; }

    /// <inheritdoc />
    public int VocabSize => Config.VocabSize;

    /// <summary>Decoding defaults read from <c>generation_config.json</c> (null when the folder had none); written back by <see cref="SavePretrained"/>.</summary>
    public GenerationConfig? GenerationConfig { get; set; }

    /// <summary>The Hugging Face architecture name written to <c>config.json</c> (e.g. <c>LlamaForCausalLM</c>).</summary>
    public abstract string ArchitectureName { get; }

    /// <summary>Total number of parameters (tied matrices counted once).</summary>
    public long ParameterCount => NamedParameters().Sum(p => p.Parameter.NumberOfElements);

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, bool lastPositionOnly = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (inputIds.dim() != 2) throw new ArgumentException($"inputIds must be [batch, tokens], got [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        if (inputIds.dtype != ScalarType.Int64) throw new ArgumentException($"inputIds must be int64, got {inputIds.dtype}.", nameof(inputIds));
        long batch = inputIds.shape[0], newTokens = inputIds.shape[1];
        if (newTokens == 0) throw new ArgumentException("inputIds has no tokens.", nameof(inputIds));
        long past = cache?.Length ?? 0;
        if (cache is not null && cache.BatchSize != batch)
            throw new ArgumentException($"The cache holds {cache.BatchSize} rows but inputIds has {batch}.", nameof(cache));
        if (cache is not null && cache.Layers != Config.NumHiddenLayers)
            throw new ArgumentException($"The cache has {cache.Layers} layers but the model has {Config.NumHiddenLayers}.", nameof(cache));
        if (attentionMask is not null && (attentionMask.dim() != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] != past + newTokens))
            throw new ArgumentException(
                $"attentionMask must be [batch, past + new] = [{batch}, {past + newTokens}], got [{string.Join(", ", attentionMask.shape)}].", nameof(attentionMask));

        if (newTokens == 1 && cache is not null && FusedDecoder is { } fused
            && fused.TryForward(inputIds, attentionMask, cache, _root.training && Config.AttentionDropout > 0) is { } fusedLogits)
            return fusedLogits;

        using var scope = NewDisposeScope();
        Tensor positions;
        if (attentionMask is not null)
        {
            var all = attentionMask.to_type(ScalarType.Int64).cumsum(1).sub_(Scalars.One).clamp_min_(Scalars.Zero);
            positions = all.narrow(1, past, newTokens);
        }
        else
        {
            using var start = past.ToScalar();
            using var stop = (past + newTokens).ToScalar();
            positions = arange(start, stop, Scalars.One, dtype: ScalarType.Int64, device: Device).unsqueeze(0).expand(batch, newTokens);
        }
        var (cos, sin) = _rope.Tables(positions, DType);

        // Explicit mask when padding or a cache is present, or for grouped-query folding; plain causal otherwise.
        Tensor? mask = null;
        if (attentionMask is not null || past > 0 || Config.KeyValueHeads != Config.NumAttentionHeads)
            mask = Attention.FoldForGroups(Attention.BuildMask(attentionMask, batch, past, newTokens, Device),
                Config.NumAttentionHeads / Config.KeyValueHeads);

        var backbone = _root.Model;
        var hidden = backbone.EmbedTokens.call(inputIds);
        foreach (var layer in backbone.Layers)
            hidden = layer.Forward(hidden, cos, sin, mask, cache);
        if (lastPositionOnly && newTokens > 1) hidden = hidden.narrow(1, newTokens - 1, 1);
        hidden = backbone.Norm.call(hidden);
        var logits = HeadOverride is { } kernelHead ? kernelHead.call(hidden)
            : _root.LmHead is { } head ? head.call(hidden) : nn.functional.linear(hidden, backbone.EmbedTokens.Weight);
        if (logits.dtype != ScalarType.Float32) logits = logits.to_type(ScalarType.Float32);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>An output projection used instead of <c>lm_head</c> / the tied embedding (set by
    /// <see cref="Quantization.ModelQuantization.Quantize"/>); null for the plain head.</summary>
    internal nn.Module<Tensor, Tensor>? HeadOverride { get; set; }

    /// <summary>The fused single-token step over the kernels (<see cref="Quantization.QuantizationOptions.FusedDecode"/>),
    /// or null.</summary>
    internal Quantization.KernelDecoder? FusedDecoder { get; set; }

    /// <summary>The decoder layers, embedding and final norm.</summary>
    internal DecoderBackbone Backbone => _root.Model;

    /// <summary>The weight format applied by <see cref="Quantization.ModelQuantization.Quantize"/>, or null for the plain model.</summary>
    public Quantization.WeightFormat? WeightFormat { get; internal set; }

    /// <summary>The output head's weight <c>[vocab, hidden]</c>: <c>lm_head.weight</c>, or the embedding matrix when tied.</summary>
    internal Tensor HeadWeight => _root.LmHead?.weight ?? _root.Model.EmbedTokens.Weight;

    /// <inheritdoc />
    public KvCache CreateCache(int batchSize, int capacity) =>
        new(Config.NumHiddenLayers, batchSize, Config.KeyValueHeads, Config.HeadDim, capacity, DType, Device);

    /// <inheritdoc />
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() => _root.named_parameters();

    /// <inheritdoc />
    public IEnumerable<Parameter> TrainableParameters() => _root.parameters().Where(p => p.requires_grad);

    /// <inheritdoc />
    public void SetTrainingMode(bool training) => _root.train(training);

    /// <summary>
    /// The projection layers that are still plain <see cref="Linear"/> modules, with their qualified names
    /// (<c>model.layers.N.self_attn.{q,k,v,o}_proj</c>, <c>model.layers.N.mlp.{gate,up,down}_proj</c>), in layer order.
    /// These are the targets for LoRA-style wrappers; the output head and embeddings are not listed.
    /// </summary>
    public IEnumerable<(string Name, Linear Module)> NamedLinearLayers()
    {
        var layers = _root.Model.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            foreach (var (name, module) in layers[i].SelfAttention.Projections())
                if (module is Linear linear) yield return ($"model.layers.{i}.self_attn.{name}", linear);
            foreach (var (name, module) in layers[i].Mlp.Projections())
                if (module is Linear linear) yield return ($"model.layers.{i}.mlp.{name}", linear);
        }
    }

    /// <summary>
    /// Replaces one projection layer (e.g. with a LoRA wrapper around it). The replacement is used by
    /// <see cref="Forward"/> from then on and its parameters appear in <see cref="NamedParameters"/> under the
    /// same prefix (e.g. a wrapper with a <c>base_layer</c> child yields <c>...q_proj.base_layer.weight</c>).
    /// The replaced module is not disposed (the wrapper usually keeps it).
    /// </summary>
    /// <param name="qualifiedName">A name from <see cref="NamedLinearLayers"/>, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
    /// <param name="replacement">A module mapping <c>[..., in]</c> to <c>[..., out]</c> like the original.</param>
    /// <exception cref="ArgumentException">The name is not a projection of this model.</exception>
    public void ReplaceLinear(string qualifiedName, nn.Module<Tensor, Tensor> replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        var parts = qualifiedName.Split('.');
        if (parts.Length != 5 || parts[0] != "model" || parts[1] != "layers" || !int.TryParse(parts[2], out int index)
            || index < 0 || index >= Config.NumHiddenLayers || !ProjectionNames.Contains(parts[4]))
            throw new ArgumentException($"'{qualifiedName}' is not a projection layer name such as model.layers.0.self_attn.q_proj.", nameof(qualifiedName));
        var layer = _root.Model.Layers[index];
        ILinearHost host = parts[3] switch
        {
            "self_attn" => layer.SelfAttention,
            "mlp" => layer.Mlp,
            _ => throw new ArgumentException($"'{qualifiedName}': expected 'self_attn' or 'mlp' after the layer index.", nameof(qualifiedName)),
        };
        if (!host.Projections().Any(p => p.Name == parts[4]))
            throw new ArgumentException($"'{qualifiedName}': {parts[3]} has no {parts[4]}.", nameof(qualifiedName));
        host.Replace(parts[4], replacement);
    }

    /// <summary>
    /// Saves the model as a Hugging Face folder: <c>config.json</c> (with <c>torch_dtype</c> and <c>architectures</c>),
    /// the weights as <c>model.safetensors</c> or shards plus <c>model.safetensors.index.json</c>, and
    /// <c>generation_config.json</c> when <see cref="GenerationConfig"/> is set. Tied output heads are not written
    /// (as transformers does). Files are written atomically; the folder reloads with
    /// <see cref="CausalLanguageModel.FromPretrained"/> and with transformers.
    /// </summary>
    /// <param name="directory">Destination folder (created if needed).</param>
    /// <param name="maxShardBytes">Largest shard in bytes; null writes one file.</param>
    public void SavePretrained(string directory, long? maxShardBytes = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (WeightFormat is Quantization.WeightFormat.Int8 or Quantization.WeightFormat.W8A8)
            throw new InvalidOperationException("An int8-quantized model cannot be saved: save the model before quantizing it (docs/performance.md, \"Decoding precision\").");
        Directory.CreateDirectory(directory);
        SafetensorsWriter.SaveCheckpoint(directory, NamedParameters().Select(p => (p.Name, (Tensor)p.Parameter)), maxShardBytes);
        var config = Config with { TorchDtype = CausalLanguageModel.DTypeName(DType), Architectures = new[] { ArchitectureName } };
        HfConfigFiles.WriteModelConfig(directory, config);
        if (GenerationConfig is not null) HfConfigFiles.WriteGenerationConfig(directory, GenerationConfig);
    }

    /// <summary>Fills parameters HF-style from a seed: linear and embedding weights ~ N(0, initializer_range), biases 0, norms 1.</summary>
    internal void InitializeWeights(long seed)
    {
        using var noGrad = no_grad();
        using var generator = new Generator((ulong)seed, CPU);
        double std = Config.InitializerRange;
        foreach (var (name, p) in NamedParameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(Scalars.OneDouble);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else
            {
                using var values = empty(p.shape, dtype: ScalarType.Float32, device: CPU).normal_(0.0, std, generator);
                p.copy_(values);
            }
        }
    }

    /// <summary>Loads every parameter from a checkpoint, failing (before any copy) on missing, unexpected or mis-shaped tensors.</summary>
    internal void LoadWeights(SafetensorsCheckpoint checkpoint)
    {
        var parameters = NamedParameters().ToList();
        var expected = parameters.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = parameters.Where(p => !checkpoint.Contains(p.Name)).Select(p => p.Name).ToList();
        if (missing.Count > 0)
            throw new CheckpointFormatException(checkpoint.Directory,
                $"the checkpoint lacks {missing.Count} tensor(s) the model needs: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? ", ..." : "")}.");
        var unexpected = checkpoint.TensorNames.Where(n => !expected.Contains(n) && !IsIgnorable(n)).ToList();
        if (unexpected.Count > 0)
            throw new CheckpointFormatException(checkpoint.Directory,
                $"the checkpoint has {unexpected.Count} tensor(s) this {ArchitectureName} configuration does not use: {string.Join(", ", unexpected.Take(8))}{(unexpected.Count > 8 ? ", ..." : "")}.");
        foreach (var (name, p) in parameters)
        {
            var info = checkpoint.GetInfo(name);
            if (!info.Shape.SequenceEqual(p.shape))
                throw new CheckpointFormatException(checkpoint.Directory,
                    $"tensor '{name}' has shape [{string.Join(", ", info.Shape)}] but config.json implies [{string.Join(", ", p.shape)}].");
        }
        foreach (var (name, p) in parameters) checkpoint.LoadInto(name, p);
    }

    private bool IsIgnorable(string name) =>
        name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
        || (Config.TieWordEmbeddings && name == "lm_head.weight");

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _root.Dispose();
        HeadOverride?.Dispose();
        FusedDecoder?.Dispose();
        _rope.Dispose();
        GC.SuppressFinalize(this);
    }
}
