using DeepAlign.Models;
using DeepAlign.Runtime;
using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// Scores the next token with one <see cref="ICausalLanguageModel"/>: <c>log_softmax</c> (float32) of its
/// last-position logits, cut to <see cref="VocabSize"/> first when the tokenizer is smaller than the logits.
/// Keeps its own <see cref="KvCache"/>, created at <see cref="Prefill"/> and released at <see cref="Reset"/>.
/// </summary>
/// <remarks>
/// Dropping finished rows copies the whole cache, and in a large batch rows finish at almost every step. So
/// <see cref="SelectRows"/> compacts lazily: finished rows stay in the cache as idle rows (fed token 0, their outputs
/// dropped) until they are a quarter of it, then the cache is compacted once. Live rows compute exactly what they
/// would in a compacted batch; the idle rows cost at most a third more compute, and the copying is amortised.
/// Rows whose prompt (ids and mask) repeats an earlier row's are prefilled once and copied.
/// </remarks>
public sealed class ModelScorer : INextTokenScorer
{
    private KvCache? _cache;
    private long[]? _live;       // cache row of each live row; null: every cache row is live, in order
    private Tensor? _liveIndex;  // _live on the device (created on demand)
    private int _cacheRows;

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
        int rows = (int)inputIds.shape[0], capacity = (int)inputIds.shape[1] + Math.Max(1, maxNewTokens);
        var (unique, copyOf) = DistinctRows(inputIds, attentionMask);
        if (unique.Length == rows)
        {
            _cacheRows = rows;
            _cache = Model.CreateCache(rows, capacity);
            return Score(inputIds, attentionMask);
        }
        // Identical rows (e.g. one prompt sampled under many settings) are prefilled once; their cache rows and scores
        // are then copied to every row that repeats them.
        using var uniqueIndex = tensor(unique, ScalarType.Int64, Device);
        using var uniqueIds = MetaFallback.IndexSelect(inputIds, 0, uniqueIndex);
        using var uniqueMask = MetaFallback.IndexSelect(attentionMask, 0, uniqueIndex);
        _cacheRows = unique.Length;
        _cache = Model.CreateCache(unique.Length, capacity);
        using var scores = Score(uniqueIds, uniqueMask);
        _cache.SelectRows(copyOf);
        _cacheRows = rows;
        using var expand = tensor(copyOf, ScalarType.Int64, Device);
        return MetaFallback.IndexSelect(scores, 0, expand);
    }

    /// <summary>
    /// The first row of each distinct (ids, mask) pair, and for every row the position of its pair in that list.
    /// </summary>
    internal static (long[] Unique, long[] CopyOf) DistinctRows(Tensor inputIds, Tensor attentionMask)
    {
        int rows = (int)inputIds.shape[0], width = (int)inputIds.shape[1];
        // Meta tensors (shapes without values, used by the device tests) cannot be compared: every row is distinct.
        if (MetaFallback.IsMeta(inputIds) || MetaFallback.IsMeta(attentionMask))
        {
            var identity = Enumerable.Range(0, rows).Select(r => (long)r).ToArray();
            return (identity, identity);
        }
        using var scope = NewDisposeScope();
        var ids = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(inputIds.to_type(ScalarType.Int64).cpu().contiguous().bytes).ToArray();
        var mask = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(attentionMask.to_type(ScalarType.Int64).cpu().contiguous().bytes).ToArray();
        var seen = new Dictionary<RowKey, long>();
        var unique = new List<long>();
        var copyOf = new long[rows];
        for (int r = 0; r < rows; r++)
        {
            var key = new RowKey(ids, mask, r * width, width);
            if (!seen.TryGetValue(key, out long slot))
            {
                slot = unique.Count;
                seen.Add(key, slot);
                unique.Add(r);
            }
            copyOf[r] = slot;
        }
        return (unique.ToArray(), copyOf);
    }

    /// <summary>One row of ids and mask, compared by content.</summary>
    private readonly struct RowKey(long[] ids, long[] mask, int offset, int width) : IEquatable<RowKey>
    {
        private ReadOnlySpan<long> Ids => ids.AsSpan(offset, width);
        private ReadOnlySpan<long> Mask => mask.AsSpan(offset, width);
        public bool Equals(RowKey other) => Ids.SequenceEqual(other.Ids) && Mask.SequenceEqual(other.Mask);
        public override bool Equals(object? obj) => obj is RowKey k && Equals(k);
        public override int GetHashCode()
        {
            var h = new HashCode();
            h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Ids));
            h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Mask));
            return h.ToHashCode();
        }
    }

    /// <inheritdoc />
    public Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context)
    {
        if (_cache is null) throw new InvalidOperationException("Step was called before Prefill.");
        if (_live is null) return Score(nextTokens, attentionMask);
        if (nextTokens.shape[0] != _live.Length || attentionMask.shape[0] != _live.Length)
            throw new ArgumentException($"Expected {_live.Length} live rows; got {nextTokens.shape[0]} tokens and {attentionMask.shape[0]} mask rows.", nameof(nextTokens));
        _liveIndex ??= tensor(_live, ScalarType.Int64, Device).DetachFromDisposeScope();
        using var ids = zeros(new long[] { _cacheRows, nextTokens.shape[1] }, ScalarType.Int64, Device).index_copy_(0, _liveIndex, nextTokens);
        using var mask = ones(new long[] { _cacheRows, attentionMask.shape[1] }, attentionMask.dtype, Device).index_copy_(0, _liveIndex, attentionMask);
        using var all = Score(ids, mask);
        return MetaFallback.IndexSelect(all, 0, _liveIndex);
    }

    /// <inheritdoc />
    public void SelectRows(IReadOnlyList<long> rows)
    {
        if (_cache is null) throw new InvalidOperationException("SelectRows was called before Prefill.");
        ArgumentNullException.ThrowIfNull(rows);
        int liveNow = _live?.Length ?? _cacheRows;
        var map = new long[rows.Count];
        for (int i = 0; i < map.Length; i++)
        {
            long r = rows[i];
            if (r < 0 || r >= liveNow) throw new ArgumentOutOfRangeException(nameof(rows), r, $"Row index outside the {liveNow} live rows.");
            map[i] = _live is null ? r : _live[r];
        }
        _liveIndex?.Dispose();
        _liveIndex = null;
        if ((_cacheRows - map.Length) * 4 >= _cacheRows)
        {
            _cache.SelectRows(map);
            _cacheRows = map.Length;
            _live = null;
        }
        else _live = map;
    }

    /// <inheritdoc />
    public void Reset()
    {
        _cache?.Dispose();
        _cache = null;
        _liveIndex?.Dispose();
        _liveIndex = null;
        _live = null;
        _cacheRows = 0;
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
