namespace DeepAlign.Method.Detection;

/// <summary>
/// Streams <see cref="SequenceProfile"/>s into <see cref="ProfileAggregates"/> with memory proportional to the longest
/// response, not the dataset (running sums per position and bucket).
/// </summary>
public sealed class ProfileAggregator
{
    private readonly IncompletenessOptions _buckets;
    private readonly double _margin;
    private readonly List<Sums> _positions = new();
    private readonly Sums[] _bucketSums;
    private readonly long[] _bucketTokens;
    private int _sequences;
    private long _tokens;

    /// <summary>Creates an aggregator.</summary>
    /// <param name="options">The profile options (buckets and completion margin); null for the defaults.</param>
    public ProfileAggregator(ProfileOptions? options = null)
    {
        options = (options ?? new ProfileOptions()).Validate();
        _buckets = options.ToIncompletenessOptions();
        _margin = options.CompletionMargin;
        _bucketSums = Enumerable.Range(0, _buckets.BucketStarts.Count).Select(_ => new Sums()).ToArray();
        _bucketTokens = new long[_buckets.BucketStarts.Count];
    }

    /// <summary>Adds one sequence.</summary>
    /// <param name="profile">Its profile.</param>
    public void Add(SequenceProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        _sequences++;
        var positions = profile.Positions;
        var perBucket = new (double Kl, double KlRev, double U, double Bf, int Count)[_bucketSums.Length];
        for (int i = 0; i < positions.Count; i++)
        {
            var p = positions[i];
            if (p.Position != i + 1) throw new ArgumentException($"Sequence {profile.Index}: positions must be 1..R in order (entry {i} is position {p.Position}).", nameof(profile));
            while (_positions.Count <= i) _positions.Add(new Sums());
            double bf = p.BaseFavored ? 1 : 0;
            _positions[i].Add(p.KlAlignedBase, p.KlBaseAligned, p.Incompleteness, bf);
            int b = _buckets.BucketIndex(p.Position);
            var acc = perBucket[b];
            perBucket[b] = (acc.Kl + p.KlAlignedBase, acc.KlRev + p.KlBaseAligned, acc.U + p.Incompleteness, acc.Bf + bf, acc.Count + 1);
        }
        _tokens += positions.Count;
        for (int b = 0; b < perBucket.Length; b++)
        {
            var (kl, klr, u, bf, c) = perBucket[b];
            if (c == 0) continue;
            _bucketSums[b].Add(kl / c, klr / c, u / c, bf / c);
            _bucketTokens[b] += c;
        }
    }

    /// <summary>Adds every sequence of a stream and passes it on (for chaining with a writer).</summary>
    /// <param name="profiles">The profiles.</param>
    /// <returns>The same profiles.</returns>
    public IEnumerable<SequenceProfile> AddAll(IEnumerable<SequenceProfile> profiles)
    {
        foreach (var p in profiles)
        {
            Add(p);
            yield return p;
        }
    }

    /// <summary>The sufficient statistics of everything added so far (for a partial report of one shard).</summary>
    /// <returns>A snapshot.</returns>
    public ProfileStatistics Statistics() => new(_sequences, _tokens, _positions.Select(p => p.ToSums()).ToArray(),
        _bucketSums.Select(b => b.ToSums()).ToArray(), _bucketTokens.ToArray());

    /// <summary>
    /// Adds the statistics of other sequences (e.g. another shard's <see cref="Statistics"/>): counts, sums and sums of
    /// squares add, so adding the statistics of disjoint parts gives the aggregates of their union.
    /// </summary>
    /// <param name="statistics">Statistics gathered with the same bucket starts.</param>
    /// <exception cref="ArgumentException">The bucket count differs from this aggregator's, or a sums vector does not have 4 values.</exception>
    public void Add(ProfileStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (statistics.ByBucket.Count != _bucketSums.Length || statistics.BucketTokens.Count != _bucketSums.Length)
            throw new ArgumentException($"The statistics have {statistics.ByBucket.Count} buckets; this aggregator has {_bucketSums.Length}.", nameof(statistics));
        if (statistics.Sequences < 0 || statistics.Tokens < 0) throw new ArgumentException("Counts must be non-negative.", nameof(statistics));
        for (int i = 0; i < statistics.ByPosition.Count; i++)
        {
            while (_positions.Count <= i) _positions.Add(new Sums());
            _positions[i].Add(statistics.ByPosition[i]);
        }
        for (int b = 0; b < _bucketSums.Length; b++)
        {
            _bucketSums[b].Add(statistics.ByBucket[b]);
            _bucketTokens[b] += statistics.BucketTokens[b];
        }
        _sequences += statistics.Sequences;
        _tokens += statistics.Tokens;
    }

    /// <summary>The aggregates of everything added so far.</summary>
    /// <returns>A snapshot.</returns>
    public ProfileAggregates Result()
    {
        var byPosition = _positions.Select((s, i) => new PositionAggregate(i + 1, s.N, s.Kl, s.KlReverse, s.U, s.Bf)).ToList();
        var starts = _buckets.BucketStarts;
        double? referenceU = _bucketSums[0].N > 0 ? _bucketSums[0].U.Mean : null;
        var byBucket = new List<BucketAggregate>(starts.Count);
        for (int b = 0; b < starts.Count; b++)
        {
            var s = _bucketSums[b];
            bool? completes = referenceU is double r && s.N > 0 ? s.U.Mean <= r + _margin : null;
            int? end = b + 1 < starts.Count ? starts[b + 1] - 1 : null;
            byBucket.Add(new BucketAggregate(b, _buckets.BucketLabel(b), starts[b], end, s.N, _bucketTokens[b], s.Kl, s.KlReverse, s.U, s.Bf, completes));
        }
        return new ProfileAggregates(_sequences, _tokens, byPosition, byBucket, _margin);
    }

    /// <summary>Running sums of the four quantities over sequences.</summary>
    private sealed class Sums
    {
        private readonly double[] _sum = new double[4];
        private readonly double[] _sumSq = new double[4];

        public int N { get; private set; }

        public void Add(double kl, double klr, double u, double bf)
        {
            N++;
            Span<double> v = [kl, klr, u, bf];
            for (int i = 0; i < 4; i++) { _sum[i] += v[i]; _sumSq[i] += v[i] * v[i]; }
        }

        public void Add(QuantitySums sums)
        {
            if (sums.Sums.Count != 4 || sums.SumsOfSquares.Count != 4 || sums.N < 0)
                throw new ArgumentException("Each sums entry needs a non-negative n and 4 sums and sums of squares.", nameof(sums));
            N += sums.N;
            for (int i = 0; i < 4; i++) { _sum[i] += sums.Sums[i]; _sumSq[i] += sums.SumsOfSquares[i]; }
        }

        public QuantitySums ToSums() => new(N, _sum.ToArray(), _sumSq.ToArray());

        private MeanWithError Get(int i)
        {
            if (N == 0) return new MeanWithError(double.NaN, double.NaN);
            double mean = _sum[i] / N;
            if (N < 2) return new MeanWithError(mean, double.NaN);
            double variance = Math.Max(0, (_sumSq[i] - N * mean * mean) / (N - 1));
            return new MeanWithError(mean, Math.Sqrt(variance / N));
        }

        public MeanWithError Kl => Get(0);
        public MeanWithError KlReverse => Get(1);
        public MeanWithError U => Get(2);
        public MeanWithError Bf => Get(3);
    }
}
