using TorchSharp.Modules;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Models.Lora;

/// <summary>
/// A read-only view of a model with LoRA adapters in which the adapters are switched off: its forward is the base
/// model's (every <see cref="LoraLinear"/> bypassed), without gradient and in evaluation mode. It serves as the frozen
/// reference of preference training on LoRA without a second copy of the weights, as TRL does with PEFT models
/// (<c>disable_adapter()</c>); docs/training.md, "DPO".
/// </summary>
/// <remarks>
/// The view equals the starting model only while the adapters were freshly added by <see cref="LoraApplier.Apply{TModel}"/>
/// (B = 0); after <see cref="LoraApplier.LoadAdapter{TModel}"/> of an earlier adapter it is the base model without that
/// adapter, not the model training started from (load a separate reference then). It does not own the model:
/// <see cref="Dispose"/> does nothing, and <see cref="SetTrainingMode"/> is ignored (the trainer switches teachers to
/// evaluation mode; the student's mode is the trainer's business). Forward passes restore the student's mode and
/// adapter switches afterwards. Not thread-safe (it toggles the student's adapters).
/// </remarks>
public sealed class AdaptersDisabledModel : ICausalLanguageModel
{
    private readonly ICausalLanguageModel _model;

    /// <summary>Creates the view.</summary>
    /// <param name="model">A model with LoRA adapters (from <see cref="LoraApplier.Apply{TModel}"/>).</param>
    /// <exception cref="ArgumentException">The model has no adapters.</exception>
    public AdaptersDisabledModel(ICausalLanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (LoraApplier.Adapters(model).Count == 0)
            throw new ArgumentException("The model has no LoRA adapters; a view with adapters disabled would be the model itself (load a separate reference copy instead).", nameof(model));
        _model = model;
    }

    /// <summary>The model whose adapters this view switches off.</summary>
    public ICausalLanguageModel Model => _model;

    /// <inheritdoc />
    public CausalLMConfig Config => _model.Config;

    /// <inheritdoc />
    public Device Device => _model.Device;

    /// <inheritdoc />
    public ScalarType DType => _model.DType;

    /// <inheritdoc />
    public int VocabSize => _model.VocabSize;

    /// <summary>The base model's logits (adapters bypassed), computed without gradient in evaluation mode.</summary>
    /// <param name="inputIds">Token ids, <c>[batch, newTokens]</c>, int64.</param>
    /// <param name="attentionMask">Optional 0/1 mask over past and new positions.</param>
    /// <param name="cache">Optional key/value cache, updated in place.</param>
    /// <param name="lastPositionOnly">Only the last position's logits.</param>
    /// <exception cref="InvalidOperationException">The adapters were merged or removed since the view was made.</exception>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, bool lastPositionOnly = false)
    {
        var adapters = LoraApplier.Adapters(_model);
        if (adapters.Count == 0)
            throw new InvalidOperationException("The model has no LoRA adapters any more (merged?), so the adapters-disabled view is no longer its base model.");
        bool training = adapters[0].Adapter.training;
        var enabled = adapters.Select(a => a.Adapter.Enabled).ToArray();
        using var noGrad = no_grad();
        if (training) _model.SetTrainingMode(false);
        foreach (var (_, adapter) in adapters) adapter.Enabled = false;
        try
        {
            return _model.Forward(inputIds, attentionMask, cache, lastPositionOnly);
        }
        finally
        {
            for (int i = 0; i < adapters.Count; i++) adapters[i].Adapter.Enabled = enabled[i];
            if (training) _model.SetTrainingMode(true);
        }
    }

    /// <inheritdoc />
    public KvCache CreateCache(int batchSize, int capacity) => _model.CreateCache(batchSize, capacity);

    /// <summary>The model's parameters without the adapters' (the base weights this view computes with).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        var adapterNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in LoraApplier.Adapters(_model))
        {
            adapterNames.Add(name + ".lora_A.weight");
            adapterNames.Add(name + ".lora_B.weight");
        }
        return _model.NamedParameters().Where(p => !adapterNames.Contains(p.Name));
    }

    /// <summary>None: the view is frozen.</summary>
    public IEnumerable<Parameter> TrainableParameters() => Array.Empty<Parameter>();

    /// <summary>Ignored: the view always computes in evaluation mode and leaves the student's mode alone.</summary>
    /// <param name="training">Ignored.</param>
    public void SetTrainingMode(bool training) { }

    /// <summary>Does nothing: the view does not own the model.</summary>
    public void Dispose() { }
}
