using DeepAlign.Models;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Testing;

/// <summary>
/// A causal language model whose next-token distribution is written by hand, per context, so that formulas
/// built on top of <see cref="ICausalLanguageModel"/> (profiles, contrastive scores, losses, sampling) can be
/// checked against numbers computed on paper. Build one with <see cref="CreateBuilder"/>.
/// </summary>
/// <remarks>
/// <para>The <em>context</em> of a position is the list of real tokens of its row up to and including that
/// position: tokens whose attention-mask entry is 0 (left padding) are skipped, and with a
/// <see cref="KvCache"/> the cached positions come first. The logits at a position are looked up for that
/// context in this order: an exact context rule (<see cref="Builder.When"/>); the rule with the longest
/// matching suffix (<see cref="Builder.WhenEndsWith"/>); the fallback function
/// (<see cref="Builder.Otherwise"/>) when it returns non-null; otherwise the default distribution
/// (<see cref="Builder.ByDefault"/>, uniform unless set). A context the table does not define therefore
/// silently gets the default distribution.</para>
/// <para>Rules given as probabilities are stored as their natural logarithms (0 becomes negative infinity),
/// so <c>log_softmax</c> of the returned logits reproduces the written log-probabilities.</para>
/// <para>The KV cache holds the row history itself: <see cref="CreateCache"/> makes a one-layer cache with one
/// head of width 1 whose keys are the token ids (exact in float32 below 2^24) and whose values are the
/// attention-mask bits. <see cref="KvCache.Trim"/>, <see cref="KvCache.Reset"/>,
/// <see cref="KvCache.SelectRows"/> and <see cref="KvCache.Clone"/> therefore behave as they would for a real
/// model. A cache not made by <see cref="CreateCache"/> of a table model is rejected.</para>
/// <para>The model has no parameters; logits are float32 on <see cref="Device"/>. It is not thread-safe.</para>
/// </remarks>
public sealed class TableCausalLanguageModel : ICausalLanguageModel
{
    private readonly Dictionary<long[], float[]> _exact;
    private readonly List<(long[] Suffix, float[] Logits)> _suffixRules;
    private readonly Func<IReadOnlyList<long>, float[]?>? _fallback;
    private readonly float[] _default;
    private bool _disposed;

    private TableCausalLanguageModel(Builder builder)
    {
        VocabSize = builder.VocabSize;
        Device = builder.DeviceValue;
        _exact = new Dictionary<long[], float[]>(builder.Exact, SequenceComparer.Instance);
        _suffixRules = builder.Suffixes.OrderByDescending(r => r.Suffix.Length).ToList();
        _fallback = builder.Fallback;
        _default = builder.DefaultLogits ?? new float[VocabSize];
        Config = new CausalLMConfig
        {
            ModelType = "table",
            VocabSize = VocabSize,
            HiddenSize = 1,
            IntermediateSize = 1,
            NumHiddenLayers = 1,
            NumAttentionHeads = 1,
            NumKeyValueHeads = 1,
            MaxPositionEmbeddings = builder.MaxPositions,
            BosTokenId = builder.Bos,
            EosTokenIds = builder.Eos,
            PadTokenId = builder.Pad,
            TorchDtype = "float32",
        };
    }

    /// <summary>Starts describing a table model over a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <param name="vocabSize">Width of the logits; every distribution must have this many entries.</param>
    /// <returns>A builder; finish with <see cref="Builder.Build"/>.</returns>
    public static Builder CreateBuilder(int vocabSize) => new(vocabSize);

    /// <inheritdoc />
    public CausalLMConfig Config { get; }

    /// <inheritdoc />
    public Device Device { get; }

    /// <inheritdoc />
    public ScalarType DType => ScalarType.Float32;

    /// <inheritdoc />
    public int VocabSize { get; }

    /// <summary>Number of <see cref="Forward"/> calls so far (to check that a caller runs one forward per step).</summary>
    public int ForwardCallCount { get; private set; }

    /// <summary>Total number of input positions (<c>batch x newTokens</c>, padding included) seen by <see cref="Forward"/>.</summary>
    public long ProcessedPositionCount { get; private set; }

    /// <summary>Whether <see cref="SetTrainingMode"/> last switched the model to training mode (it has no effect on outputs).</summary>
    public bool IsTraining { get; private set; }

    /// <summary>
    /// Returns a copy of the logits the table gives for <paramref name="context"/> (the real tokens so far), using the
    /// lookup order described in the class remarks.
    /// </summary>
    /// <param name="context">Token ids of the context, oldest first.</param>
    /// <returns>Logits of length <see cref="VocabSize"/>.</returns>
    public float[] LogitsFor(IReadOnlyList<long> context) => (float[])Lookup(context).Clone();

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null, bool lastPositionOnly = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2)
            throw new ArgumentException($"inputIds must be [batch, newTokens]; got shape [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        if (inputIds.dtype != ScalarType.Int64)
            throw new ArgumentException($"inputIds must be int64; got {inputIds.dtype}.", nameof(inputIds));
        int batch = (int)inputIds.shape[0];
        int newTokens = (int)inputIds.shape[1];
        if (newTokens == 0) throw new ArgumentException("inputIds has no positions.", nameof(inputIds));

        using var scope = NewDisposeScope();
        long[] ids = inputIds.cpu().data<long>().ToArray();
        foreach (var id in ids)
            if (id < 0 || id >= VocabSize)
                throw new ArgumentOutOfRangeException(nameof(inputIds), id, $"Token id outside the table model's vocabulary of {VocabSize}.");

        int past = 0;
        long[] history = Array.Empty<long>();
        if (cache is not null)
        {
            if (cache.Layers != 1)
                throw new ArgumentException($"The cache has {cache.Layers} layers; a table model's cache (from CreateCache) has 1.", nameof(cache));
            if (cache.BatchSize != batch)
                throw new ArgumentException($"The cache holds {cache.BatchSize} rows but inputIds has {batch}.", nameof(cache));
            past = cache.Length;
            var newKeys = inputIds.to(ScalarType.Float32).reshape(batch, 1, newTokens, 1);
            var (keys, _) = cache.Append(0, newKeys, newKeys);
            history = keys.reshape(batch, past + newTokens).cpu().to(ScalarType.Int64).data<long>().ToArray();
        }

        int total = past + newTokens;
        long[]? mask = null;
        if (attentionMask is not null)
        {
            if (attentionMask.dim() != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] != total)
                throw new ArgumentException(
                    $"attentionMask must be [batch, past + new] = [{batch}, {total}]; got [{string.Join(", ", attentionMask.shape)}].", nameof(attentionMask));
            mask = attentionMask.cpu().to(ScalarType.Int64).data<long>().ToArray();
            foreach (var m in mask)
                if (m != 0 && m != 1) throw new ArgumentException($"attentionMask must hold 0 or 1; found {m}.", nameof(attentionMask));
        }

        int outPositions = lastPositionOnly ? 1 : newTokens;
        var output = new float[batch * outPositions * VocabSize];
        var context = new List<long>(total);
        for (int b = 0; b < batch; b++)
        {
            context.Clear();
            for (int p = 0; p < total; p++)
            {
                long token = p < past ? history[b * total + p] : ids[b * newTokens + (p - past)];
                bool real = mask is null || mask[b * total + p] == 1;
                if (real) context.Add(token);
                int t = p - past;
                if (t < 0) continue;
                int outIndex = lastPositionOnly ? (t == newTokens - 1 ? 0 : -1) : t;
                if (outIndex < 0) continue;
                var logits = Lookup(context);
                Array.Copy(logits, 0, output, (b * outPositions + outIndex) * VocabSize, VocabSize);
            }
        }

        ForwardCallCount++;
        ProcessedPositionCount += (long)batch * newTokens;
        return tensor(output, new long[] { batch, outPositions, VocabSize }, ScalarType.Float32, Device).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public KvCache CreateCache(int batchSize, int capacity) =>
        new(layers: 1, batchSize, kvHeads: 1, headDim: 1, capacity, ScalarType.Float32, Device);

    /// <inheritdoc />
    public IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> NamedParameters() => Array.Empty<(string, TorchSharp.Modules.Parameter)>();

    /// <inheritdoc />
    public IEnumerable<TorchSharp.Modules.Parameter> TrainableParameters() => Array.Empty<TorchSharp.Modules.Parameter>();

    /// <inheritdoc />
    public void SetTrainingMode(bool training) => IsTraining = training;

    /// <inheritdoc />
    public void Dispose() => _disposed = true;

    private float[] Lookup(IReadOnlyList<long> context)
    {
        if (_exact.Count > 0)
        {
            var key = context as long[] ?? context.ToArray();
            if (_exact.TryGetValue(key, out var exact)) return exact;
        }
        foreach (var (suffix, logits) in _suffixRules)
            if (EndsWith(context, suffix)) return logits;
        if (_fallback is not null)
        {
            var fromFunction = _fallback(context);
            if (fromFunction is not null)
            {
                Builder.CheckLogits(fromFunction, VocabSize, "the Otherwise function's result");
                return fromFunction;
            }
        }
        return _default;
    }

    private static bool EndsWith(IReadOnlyList<long> context, long[] suffix)
    {
        if (suffix.Length > context.Count) return false;
        int offset = context.Count - suffix.Length;
        for (int i = 0; i < suffix.Length; i++)
            if (context[offset + i] != suffix[i]) return false;
        return true;
    }

    /// <summary>Describes a <see cref="TableCausalLanguageModel"/>: context rules, a default distribution, special tokens and device.</summary>
    public sealed class Builder
    {
        internal readonly Dictionary<long[], float[]> Exact = new(SequenceComparer.Instance);
        internal readonly List<(long[] Suffix, float[] Logits)> Suffixes = new();
        internal Func<IReadOnlyList<long>, float[]?>? Fallback;
        internal float[]? DefaultLogits;
        internal Device DeviceValue = CPU;
        internal int? Bos;
        internal IReadOnlyList<int>? Eos;
        internal int? Pad;
        internal int MaxPositions = 1 << 20;

        internal Builder(int vocabSize)
        {
            if (vocabSize <= 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "The vocabulary must have at least one token.");
            VocabSize = vocabSize;
        }

        /// <summary>Width of the logits.</summary>
        public int VocabSize { get; }

        /// <summary>Sets the distribution that follows exactly this context (all real tokens of the row, oldest first).</summary>
        /// <param name="context">The context; may be empty (the distribution before any token).</param>
        /// <returns>An object on which to state the distribution.</returns>
        public NextDistribution When(params long[] context)
        {
            ArgumentNullException.ThrowIfNull(context);
            CheckIds(context, nameof(context));
            var key = (long[])context.Clone();
            return new NextDistribution(this, logits => Exact[key] = logits, $"When({string.Join(", ", context)})");
        }

        /// <summary>Sets the distribution that follows any context ending with <paramref name="suffix"/>; the longest matching suffix wins.</summary>
        /// <param name="suffix">The last tokens of the context (at least one).</param>
        /// <returns>An object on which to state the distribution.</returns>
        public NextDistribution WhenEndsWith(params long[] suffix)
        {
            ArgumentNullException.ThrowIfNull(suffix);
            if (suffix.Length == 0) throw new ArgumentException("A suffix rule needs at least one token; use ByDefault for all contexts.", nameof(suffix));
            CheckIds(suffix, nameof(suffix));
            var key = (long[])suffix.Clone();
            return new NextDistribution(this, logits =>
            {
                Suffixes.RemoveAll(r => r.Suffix.SequenceEqual(key));
                Suffixes.Add((key, logits));
            }, $"WhenEndsWith({string.Join(", ", suffix)})");
        }

        /// <summary>Sets the distribution for contexts no rule matches (uniform when never called).</summary>
        /// <returns>An object on which to state the distribution.</returns>
        public NextDistribution ByDefault() => new(this, logits => DefaultLogits = logits, "ByDefault()");

        /// <summary>
        /// Sets a function consulted after the context rules: it receives the context and returns logits of length
        /// <see cref="VocabSize"/>, or null to fall through to the default distribution.
        /// </summary>
        /// <param name="logitsForContext">The function; it must be deterministic for the model to behave like one.</param>
        /// <returns>This builder.</returns>
        public Builder Otherwise(Func<IReadOnlyList<long>, float[]?> logitsForContext)
        {
            Fallback = logitsForContext ?? throw new ArgumentNullException(nameof(logitsForContext));
            return this;
        }

        /// <summary>Sets the special token ids reported in <see cref="ICausalLanguageModel.Config"/>.</summary>
        /// <param name="bos">Beginning-of-sequence id.</param>
        /// <param name="eos">End-of-sequence id(s).</param>
        /// <param name="pad">Padding id.</param>
        /// <returns>This builder.</returns>
        public Builder WithSpecialTokens(int? bos = null, IReadOnlyList<int>? eos = null, int? pad = null)
        {
            foreach (var id in new[] { bos, pad }.Concat((eos ?? Array.Empty<int>()).Select(e => (int?)e)))
                if (id is { } v && (v < 0 || v >= VocabSize))
                    throw new ArgumentOutOfRangeException(nameof(eos), v, $"Special token id outside the vocabulary of {VocabSize}.");
            Bos = bos;
            Eos = eos?.ToArray();
            Pad = pad;
            return this;
        }

        /// <summary>Places the logits on <paramref name="device"/> (CPU by default).</summary>
        /// <param name="device">Target device.</param>
        /// <returns>This builder.</returns>
        public Builder OnDevice(Device device)
        {
            DeviceValue = device ?? throw new ArgumentNullException(nameof(device));
            return this;
        }

        /// <summary>Builds the model. The builder may be reused; later changes do not affect built models.</summary>
        /// <returns>The model.</returns>
        public TableCausalLanguageModel Build() => new(this);

        internal void CheckIds(IEnumerable<long> ids, string name)
        {
            foreach (var id in ids)
                if (id < 0 || id >= VocabSize)
                    throw new ArgumentOutOfRangeException(name, id, $"Token id outside the vocabulary of {VocabSize}.");
        }

        internal static void CheckLogits(float[] logits, int vocabSize, string where)
        {
            if (logits.Length != vocabSize)
                throw new ArgumentException($"{where}: expected {vocabSize} logits, got {logits.Length}.");
            bool anyFinite = false;
            foreach (var l in logits)
            {
                if (float.IsNaN(l) || float.IsPositiveInfinity(l)) throw new ArgumentException($"{where}: logits must be finite or negative infinity; found {l}.");
                if (float.IsFinite(l)) anyFinite = true;
            }
            if (!anyFinite) throw new ArgumentException($"{where}: at least one logit must be finite.");
        }
    }

    /// <summary>States the next-token distribution of one rule of a <see cref="Builder"/>.</summary>
    public sealed class NextDistribution
    {
        private readonly Builder _builder;
        private readonly Action<float[]> _set;
        private readonly string _where;

        internal NextDistribution(Builder builder, Action<float[]> set, string where)
        {
            _builder = builder;
            _set = set;
            _where = where;
        }

        /// <summary>Gives the distribution as probabilities (non-negative, summing to 1 within 1e-4; stored as their logarithms).</summary>
        /// <param name="probabilities">One probability per token.</param>
        /// <returns>The builder, to continue.</returns>
        public Builder Probabilities(params double[] probabilities)
        {
            ArgumentNullException.ThrowIfNull(probabilities);
            if (probabilities.Length != _builder.VocabSize)
                throw new ArgumentException($"{_where}: expected {_builder.VocabSize} probabilities, got {probabilities.Length}.", nameof(probabilities));
            double sum = 0;
            foreach (var p in probabilities)
            {
                if (!(p >= 0 && p <= 1)) throw new ArgumentException($"{_where}: probabilities must lie in [0, 1]; found {p}.", nameof(probabilities));
                sum += p;
            }
            if (Math.Abs(sum - 1) > 1e-4) throw new ArgumentException($"{_where}: probabilities sum to {sum}, not 1.", nameof(probabilities));
            _set(probabilities.Select(p => p == 0 ? float.NegativeInfinity : (float)Math.Log(p)).ToArray());
            return _builder;
        }

        /// <summary>Gives the distribution as logits (any finite values or negative infinity; softmax gives the probabilities).</summary>
        /// <param name="logits">One logit per token.</param>
        /// <returns>The builder, to continue.</returns>
        public Builder Logits(params double[] logits)
        {
            ArgumentNullException.ThrowIfNull(logits);
            var asFloat = logits.Select(l => (float)l).ToArray();
            Builder.CheckLogits(asFloat, _builder.VocabSize, _where);
            _set(asFloat);
            return _builder;
        }

        /// <summary>
        /// Gives probabilities for a few tokens; the remaining mass is spread evenly over the tokens not listed
        /// (which get probability 0 when the listed ones already sum to 1).
        /// </summary>
        /// <param name="entries">Token ids and their probabilities.</param>
        /// <returns>The builder, to continue.</returns>
        public Builder Tokens(params (long Token, double Probability)[] entries)
        {
            ArgumentNullException.ThrowIfNull(entries);
            _builder.CheckIds(entries.Select(e => e.Token), nameof(entries));
            if (entries.Select(e => e.Token).Distinct().Count() != entries.Length)
                throw new ArgumentException($"{_where}: a token is listed twice.", nameof(entries));
            double listed = entries.Sum(e => e.Probability);
            if (listed > 1 + 1e-4) throw new ArgumentException($"{_where}: listed probabilities sum to {listed} > 1.", nameof(entries));
            int unlisted = _builder.VocabSize - entries.Length;
            double rest = Math.Max(0, 1 - listed);
            if (unlisted == 0 && rest > 1e-4) throw new ArgumentException($"{_where}: every token is listed but the probabilities sum to {listed}.", nameof(entries));
            var p = new double[_builder.VocabSize];
            if (unlisted > 0 && rest > 1e-12) Array.Fill(p, rest / unlisted);
            foreach (var (token, probability) in entries) p[token] = probability;
            return Probabilities(p);
        }

        /// <summary>Puts <paramref name="probability"/> on one token and spreads the rest evenly over all others.</summary>
        /// <param name="token">The favoured token.</param>
        /// <param name="probability">Its probability.</param>
        /// <returns>The builder, to continue.</returns>
        public Builder Peaked(long token, double probability = 0.9) => Tokens((token, probability));
    }

    /// <summary>Value equality on token sequences (for the exact-context table).</summary>
    private sealed class SequenceComparer : IEqualityComparer<long[]>
    {
        public static readonly SequenceComparer Instance = new();

        public bool Equals(long[]? x, long[]? y) => ReferenceEquals(x, y) || (x is not null && y is not null && x.AsSpan().SequenceEqual(y));

        public int GetHashCode(long[] obj)
        {
            var hash = new HashCode();
            foreach (var v in obj) hash.Add(v);
            return hash.ToHashCode();
        }
    }
}
