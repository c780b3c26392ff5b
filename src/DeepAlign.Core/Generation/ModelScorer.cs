using DeepAlign.Models;
using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// Scores the next token with one <see cref="ICausalLanguageModel"/>: <c>log_softmax</c> (float32) of its
/// last-position logits, cut to <see cref="VocabSize"/> first when the tokenizer is smaller than the logits.
/// Keeps its own <see cref="KvCache"/>, created at <see cref="Prefill"/> and released at <see cref="Reset"/>.
/// </summary>
public sealed class ModelScorer : INextTokenScorer
{
    private KvCache? _cache;

    /// <summary>Creates a scorer over <paramref name="model"/> (which it does not own).</summary>
    /// <param name="model">The model.</param>
    /// <param name="vocabSize">Tokenizer vocabulary size when smaller than the model's logits; null keeps them all.</param>
    public ModelScorer(ICausalLanguageModel model, int? vocabSize = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        if (vocabSize is { } v && (v < 1 || v > model.VocabSize))
            throw new ArgumentOutOfRangeException(nameof(vocabSize), v, $"The vocabulary cut must lie in [1, {model.VocabSize}] (the model's logits width).");
        VocabSize = vocabSize ?? model.VocabSize;
    }

    /// <summary>The scored model.</summary>
    public ICausalLanguageModel Model { get; }

    /// <inheritdoc />
    public Device Device => Model.Device;

    /// <inheritdoc />
    public int VocabSize { get; }

    /// <summary>The cache of the current batch (null outside a generation call).</summary>
    public KvCache? Cache => _cache;

    /// <inheritdoc />
    public Tensor Prefill(Tensor inputIds, Tensor attentionMask, ScoringContext context, int maxNewTokens)
    {
        Reset();
        _cache = Model.CreateCache((int)inputIds.shape[0], (int)inputIds.shape[1] + Math.Max(1, maxNewTokens));
        return Score(inputIds, attentionMask);
    }

    /// <inheritdoc />
    public Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context)
    {
        if (_cache is null) throw new InvalidOperationException("Step was called before Prefill.");
        return Score(nextTokens, attentionMask);
    }

    /// <inheritdoc />
    public void SelectRows(IReadOnlyList<long> rows)
    {
        if (_cache is null) throw new InvalidOperationException("SelectRows was called before Prefill.");
        _cache.SelectRows(rows);
    }

    /// <inheritdoc />
    public void Reset()
    {
        _cache?.Dispose();
        _cache = null;
    }

    /// <inheritdoc />
    public void Dispose() => Reset();

    private Tensor Score(Tensor ids, Tensor mask)
    {
        using var logits = Model.Forward(ids, mask, _cache, lastPositionOnly: true);
        using var last = logits.select(1, logits.shape[1] - 1);
        return ToLogProbabilities(last, VocabSize);
    }

    /// <summary>float32 log-softmax over the first <paramref name="vocabSize"/> columns of <c>[batch, V]</c> logits.</summary>
    internal static Tensor ToLogProbabilities(Tensor logits, int vocabSize)
    {
        using var cut = logits.shape[^1] == vocabSize ? logits.alias() : logits.narrow(-1, 0, vocabSize);
        using var f32 = cut.to(ScalarType.Float32);
        return f32.log_softmax(-1);
    }
}
