using DeepAlign.Runtime;
using DeepAlign.Data;

namespace DeepAlign.Training.Data;

/// <summary>
/// An endless, deterministic stream of training examples drawn from one or more sources in a fixed ratio.
/// Each source is reshuffled every epoch from (seed, source index, epoch); the mixer picks, at every draw, the
/// source furthest below its share (smooth weighted round-robin), so harmful : benign = 1 : 4 gives exactly one
/// harmful and four benign examples in every five consecutive draws. The whole state is <see cref="Position"/>.
/// </summary>
public sealed class TrainingData
{
    private readonly Source[] _sources;
    private readonly int _seed;
    private readonly double _weightSum;
    private long _draws;

    private sealed class Source
    {
        public required DataSource Spec;
        public required TrainingExample?[] Prebuilt;
        public long Epoch;
        public int Cursor;
        public long Drawn;
        public int[] Order = Array.Empty<int>();
    }

    /// <summary>Creates the stream and, for deterministic builders, builds (and so validates) every example now.</summary>
    /// <param name="sources">One or more sources with distinct names.</param>
    /// <param name="seed">Seed of the shuffles and of random example builders.</param>
    /// <exception cref="ArgumentException">No sources, duplicate names, non-positive weights or an empty source.</exception>
    /// <exception cref="DatasetFormatException">A record cannot be turned into an example.</exception>
    public TrainingData(IReadOnlyList<DataSource> sources, int seed)
    {
        if (sources.Count == 0) throw new ArgumentException("At least one data source is needed.", nameof(sources));
        if (sources.Select(s => s.Name).Distinct(StringComparer.Ordinal).Count() != sources.Count)
            throw new ArgumentException("Data source names must be distinct.", nameof(sources));
        _seed = seed;
        _sources = new Source[sources.Count];
        for (int i = 0; i < sources.Count; i++)
        {
            var s = sources[i];
            if (!(s.Weight > 0) || double.IsInfinity(s.Weight)) throw new ArgumentException($"Data source '{s.Name}' has weight {s.Weight}; weights must be positive.", nameof(sources));
            if (s.Records.Count == 0) throw new ArgumentException($"Data source '{s.Name}' is empty.", nameof(sources));
            var prebuilt = new TrainingExample?[s.Records.Count];
            if (s.Builder.IsDeterministic)
            {
                var unused = new SplitMixRandom(0);
                for (int r = 0; r < prebuilt.Length; r++) prebuilt[r] = s.Builder.Build(s.Records[r], unused) with { Source = s.Name };
            }
            else
            {
                // Build once to surface malformed lines at load time; the example is rebuilt at each draw.
                for (int r = 0; r < s.Records.Count; r++) s.Builder.Build(s.Records[r], new SplitMixRandom(r));
            }
            _sources[i] = new Source { Spec = s, Prebuilt = prebuilt };
            _sources[i].Order = Permutation(i, 0);
        }
        _weightSum = sources.Sum(s => s.Weight);
    }

    /// <summary>Convenience: one source named <c>default</c>.</summary>
    /// <param name="records">Dataset lines.</param>
    /// <param name="builder">Example builder.</param>
    /// <param name="seed">Shuffle seed.</param>
    /// <param name="shuffle">Reshuffle every epoch (default true).</param>
    public static TrainingData Single(IReadOnlyList<DatasetRecord> records, IExampleBuilder builder, int seed, bool shuffle = true) =>
        new(new[] { new DataSource("default", records, builder, 1.0, shuffle) }, seed);

    /// <summary>The sources, in order.</summary>
    public IReadOnlyList<DataSource> Sources => _sources.Select(s => s.Spec).ToArray();

    /// <summary>
    /// Optimiser steps for <paramref name="epochs"/> passes over the first source, the other sources mixed in by weight:
    /// ceil(epochs x |first| x (sum of weights / first weight) / sequences per step), at least 1.
    /// </summary>
    /// <param name="epochs">Passes over the first source (positive).</param>
    /// <param name="sequencesPerStep">Micro-batch size times accumulation steps.</param>
    public int StepsFor(double epochs, int sequencesPerStep)
    {
        if (!(epochs > 0) || !double.IsFinite(epochs)) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Epochs must be positive.");
        if (sequencesPerStep < 1) throw new ArgumentOutOfRangeException(nameof(sequencesPerStep), sequencesPerStep, "At least one sequence per step.");
        var first = _sources[0].Spec;
        double share = _sources.Sum(s => s.Spec.Weight) / first.Weight;
        return (int)Math.Max(1, Math.Ceiling(epochs * first.Records.Count * share / sequencesPerStep));
    }

    /// <summary>Total records over all sources.</summary>
    public int RecordCount => _sources.Sum(s => s.Spec.Records.Count);

    /// <summary>Epochs completed over the first source (fractional).</summary>
    public double Epoch => _sources[0].Epoch + (double)_sources[0].Cursor / _sources[0].Spec.Records.Count;

    /// <summary>The current position (a snapshot; serialise it into a checkpoint).</summary>
    public DataPosition Position => new()
    {
        Draws = _draws,
        Sources = _sources.Select(s => new SourcePosition(s.Spec.Name, s.Epoch, s.Cursor, s.Drawn)).ToArray(),
    };

    /// <summary>Moves the stream to <paramref name="position"/> (from a checkpoint of a run over the same sources and seed).</summary>
    /// <param name="position">A position taken from <see cref="Position"/>.</param>
    /// <exception cref="ArgumentException">The position does not match these sources.</exception>
    public void Restore(DataPosition position)
    {
        ValidatePosition(position);
        for (int i = 0; i < _sources.Length; i++)
        {
            var p = position.Sources[i];
            var s = _sources[i];
            s.Epoch = p.Epoch;
            s.Cursor = p.Cursor;
            s.Drawn = p.Drawn;
            s.Order = Permutation(i, p.Epoch);
        }
        _draws = position.Draws;
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="position"/> fits this data (changes nothing).</summary>
    internal void ValidatePosition(DataPosition position)
    {
        ArgumentNullException.ThrowIfNull(position);
        if (position.Sources is null) throw new ArgumentException("The saved data position has no sources list.", nameof(position));
        if (position.Draws < 0) throw new ArgumentException($"The saved data position has a negative draw count ({position.Draws}).", nameof(position));
        if (position.Sources.Count != _sources.Length)
            throw new ArgumentException($"The saved data position has {position.Sources.Count} sources but the data has {_sources.Length}.", nameof(position));
        for (int i = 0; i < _sources.Length; i++)
        {
            var p = position.Sources[i] ?? throw new ArgumentException($"Saved data source {i} is null.", nameof(position));
            var s = _sources[i];
            if (p.Name != s.Spec.Name) throw new ArgumentException($"Saved data source {i} is '{p.Name}' but the data's is '{s.Spec.Name}'.", nameof(position));
            if (p.Cursor < 0 || p.Cursor > s.Spec.Records.Count || p.Epoch < 0 || p.Drawn < 0)
                throw new ArgumentException($"Saved position of source '{p.Name}' (epoch {p.Epoch}, cursor {p.Cursor}) does not fit its {s.Spec.Records.Count} records.", nameof(position));
        }
    }

    /// <summary>Draws the next example.</summary>
    public TrainingExample Next()
    {
        int pick = 0;
        double best = double.NegativeInfinity;
        for (int i = 0; i < _sources.Length; i++)
        {
            double deficit = _sources[i].Spec.Weight / _weightSum * (_draws + 1) - _sources[i].Drawn;
            if (deficit > best + 1e-12) { best = deficit; pick = i; }
        }
        var s = _sources[pick];
        if (s.Cursor >= s.Order.Length)
        {
            s.Epoch++;
            s.Cursor = 0;
            s.Order = Permutation(pick, s.Epoch);
        }
        int index = s.Order[s.Cursor];
        var example = s.Prebuilt[index] ?? s.Spec.Builder.Build(s.Spec.Records[index], new SplitMixRandom(Mix(_seed, pick, s.Epoch, s.Cursor, 0x5eed))) with { Source = s.Spec.Name };
        s.Cursor++;
        s.Drawn++;
        _draws++;
        return example;
    }

    /// <summary>Draws <paramref name="count"/> examples.</summary>
    /// <param name="count">Number of examples.</param>
    public IReadOnlyList<TrainingExample> Next(int count)
    {
        var list = new TrainingExample[count];
        for (int i = 0; i < count; i++) list[i] = Next();
        return list;
    }

    private int[] Permutation(int source, long epoch)
    {
        int n = _sources[source].Spec.Records.Count;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        if (!_sources[source].Spec.Shuffle) return order;
        var rng = new SplitMixRandom(Mix(_seed, source, epoch, 0, 0x5417));
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>A stable 32-bit mix of integers (<see cref="SplitMix64.Combine"/>, masked to a non-negative int).</summary>
    internal static int Mix(long a, long b, long c, long d, long e) => (int)(SplitMix64.Combine(a, b, c, d, e) & 0x7FFFFFFF);
}
