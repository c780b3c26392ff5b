using static TorchSharp.torch;

namespace DeepAlign.Models;

/// <summary>
/// A preallocated key/value cache: per layer, one key and one value buffer of shape
/// <c>[batch, kvHeads, capacity, headDim]</c>. Appending writes into the buffer (no per-step concatenation);
/// when the capacity is exceeded the buffers grow geometrically, so a long generation reallocates
/// O(log n) times. The cache owns its tensors and must be disposed.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor?[] _keys;
    private readonly Tensor?[] _values;
    private readonly int[] _layerCapacity;
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly ScalarType _dtype;
    private readonly Device _device;
    private bool _disposed;

    /// <summary>Creates an empty cache.</summary>
    /// <param name="layers">Number of decoder layers.</param>
    /// <param name="batchSize">Number of sequences.</param>
    /// <param name="kvHeads">Number of key/value heads.</param>
    /// <param name="headDim">Dimension of each head.</param>
    /// <param name="capacity">Positions to preallocate.</param>
    /// <param name="dtype">Element type of keys and values (the model's compute dtype).</param>
    /// <param name="device">Device of the model.</param>
    public KvCache(int layers, int batchSize, int kvHeads, int headDim, int capacity, ScalarType dtype, Device device)
    {
        if (layers <= 0) throw new ArgumentOutOfRangeException(nameof(layers), layers, "A cache needs at least one layer.");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be positive.");
        if (kvHeads <= 0 || headDim <= 0) throw new ArgumentOutOfRangeException(nameof(kvHeads), "Heads and head dimension must be positive.");
        _keys = new Tensor?[layers];
        _values = new Tensor?[layers];
        _layerCapacity = new int[layers];
        _kvHeads = kvHeads;
        _headDim = headDim;
        _dtype = dtype;
        _device = device;
        BatchSize = batchSize;
        Capacity = Math.Max(1, capacity);
    }

    /// <summary>Number of layers.</summary>
    public int Layers => _keys.Length;

    /// <summary>Number of sequences.</summary>
    public int BatchSize { get; private set; }

    /// <summary>Positions currently stored (identical for every row; padding is handled by the attention mask).</summary>
    public int Length { get; private set; }

    /// <summary>Positions the buffers can hold before they grow.</summary>
    public int Capacity { get; private set; }

    /// <summary>
    /// Appends <paramref name="key"/> and <paramref name="value"/> (<c>[batch, kvHeads, newTokens, headDim]</c>) for
    /// <paramref name="layer"/> and returns views over everything cached so far for that layer.
    /// Layers are appended in order; <see cref="Length"/> advances when the last layer is written.
    /// </summary>
    /// <param name="layer">Layer index.</param>
    /// <param name="key">New keys.</param>
    /// <param name="value">New values.</param>
    /// <returns>Keys and values for positions <c>[0, Length + newTokens)</c> (views into the buffers).</returns>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor key, Tensor value)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int added = (int)key.shape[2];
        int end = Length + added;
        EnsureCapacity(layer, end);
        var k = _keys[layer]!;
        var v = _values[layer]!;
        using (var kSlot = k.narrow(2, Length, added)) kSlot.copy_(key);
        using (var vSlot = v.narrow(2, Length, added)) vSlot.copy_(value);
        if (layer == Layers - 1) Length = end;
        return (k.narrow(2, 0, end), v.narrow(2, 0, end));
    }

    private void EnsureCapacity(int layer, int needed)
    {
        var existing = _keys[layer];
        if (existing is not null && _layerCapacity[layer] >= needed) return;
        int newCapacity = Capacity;
        while (newCapacity < needed) newCapacity *= 2;
        var shape = new long[] { BatchSize, _kvHeads, newCapacity, _headDim };
        var k = zeros(shape, dtype: _dtype, device: _device);
        var v = zeros(shape, dtype: _dtype, device: _device);
        if (existing is not null && Length > 0)
        {
            using (var dst = k.narrow(2, 0, Length)) using (var src = existing.narrow(2, 0, Length)) dst.copy_(src);
            using (var dst = v.narrow(2, 0, Length)) using (var src = _values[layer]!.narrow(2, 0, Length)) dst.copy_(src);
        }
        existing?.Dispose();
        _values[layer]?.Dispose();
        _keys[layer] = k.DetachFromDisposeScope();
        _values[layer] = v.DetachFromDisposeScope();
        _layerCapacity[layer] = newCapacity;
        if (newCapacity > Capacity) Capacity = newCapacity;
    }

    /// <summary>Key/value heads per layer.</summary>
    internal int KeyValueHeads => _kvHeads;

    /// <summary>Dimension of each head.</summary>
    internal int HeadDim => _headDim;

    /// <summary>Element type of the buffers.</summary>
    internal ScalarType DType => _dtype;

    /// <summary>Device of the buffers.</summary>
    internal Device Device => _device;

    /// <summary>Makes every layer's buffers hold at least <paramref name="needed"/> positions (growing them as
    /// <see cref="Append"/> does) and returns layer <paramref name="layer"/>'s whole buffers
    /// <c>[batch, kvHeads, capacity, headDim]</c> (contiguous, owned by the cache), for code that writes the new positions
    /// in place (the fused decoding step, <c>Quantization/KernelDecoder</c>) and then calls <see cref="Advance"/>.</summary>
    internal (Tensor Keys, Tensor Values, int Capacity) Buffers(int layer, int needed)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCapacity(layer, needed);
        return (_keys[layer]!, _values[layer]!, _layerCapacity[layer]);
    }

    /// <summary>Counts <paramref name="added"/> positions written in place through <see cref="Buffers"/> into every layer.</summary>
    internal void Advance(int added)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Length += added;
    }

    /// <summary>Forgets all cached positions (buffers are kept for reuse).</summary>
    public void Reset() => Length = 0;

    /// <summary>Drops cached positions past <paramref name="length"/> (for rewinding after a forced prefix or a branch).</summary>
    /// <param name="length">New length, between 0 and <see cref="Length"/>.</param>
    public void Trim(int length)
    {
        if (length < 0 || length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Trim length must be between 0 and the cached length {Length}.");
        Length = length;
    }

    /// <summary>Keeps only the given batch rows, in the given order (e.g. to drop finished sequences or fan out a prompt).</summary>
    /// <param name="rows">Row indices into the current batch; may repeat.</param>
    public void SelectRows(IReadOnlyList<long> rows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (rows.Count == 0) throw new ArgumentException("At least one row must be kept.", nameof(rows));
        foreach (var r in rows)
            if (r < 0 || r >= BatchSize) throw new ArgumentOutOfRangeException(nameof(rows), r, $"Row index outside the batch of {BatchSize}.");
        using var index = tensor(rows.ToArray(), dtype: ScalarType.Int64, device: _device);
        for (int l = 0; l < Layers; l++)
        {
            if (_keys[l] is null) continue;
            var k = Runtime.MetaFallback.IndexSelect(_keys[l]!, 0, index);
            var v = Runtime.MetaFallback.IndexSelect(_values[l]!, 0, index);
            _keys[l]!.Dispose();
            _values[l]!.Dispose();
            _keys[l] = k.DetachFromDisposeScope();
            _values[l] = v.DetachFromDisposeScope();
        }
        BatchSize = rows.Count;
    }

    /// <summary>Returns an independent deep copy (for branching decoding from a shared prefix).</summary>
    public KvCache Clone()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var copy = new KvCache(Layers, BatchSize, _kvHeads, _headDim, Capacity, _dtype, _device) { Length = Length };
        for (int l = 0; l < Layers; l++)
        {
            copy._keys[l] = _keys[l]?.clone().DetachFromDisposeScope();
            copy._values[l] = _values[l]?.clone().DetachFromDisposeScope();
            copy._layerCapacity[l] = _layerCapacity[l];
        }
        return copy;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        for (int l = 0; l < Layers; l++)
        {
            _keys[l]?.Dispose();
            _values[l]?.Dispose();
            _keys[l] = null;
            _values[l] = null;
        }
    }
}
