namespace DeepAlign.Method.Detection;

/// <summary>A mean with its standard error across sequences (NaN when fewer than two sequences contribute).</summary>
/// <param name="Mean">The mean.</param>
/// <param name="StdErr">Sample standard deviation / sqrt(n), or NaN for n &lt; 2.</param>
public readonly record struct MeanWithError(double Mean, double StdErr);

/// <summary>Aggregates of one response position j over the sequences that reach it.</summary>
/// <param name="Position">j (1-based).</param>
/// <param name="N">n_j, the number of sequences whose response reaches j.</param>
/// <param name="Kl">KL(pi_a || pi_b).</param>
/// <param name="KlReverse">KL(pi_b || pi_a).</param>
/// <param name="U">Incompleteness U_j.</param>
/// <param name="BaseFavoredRate">Share of realised tokens that are base-favored (r_j &gt; tau).</param>
public sealed record PositionAggregate(int Position, int N, MeanWithError Kl, MeanWithError KlReverse, MeanWithError U, MeanWithError BaseFavoredRate);

/// <summary>
/// Aggregates of one position bucket: each sequence reaching the bucket contributes the mean of its positions in the
/// bucket; the mean and standard error are taken across those sequences.
/// </summary>
/// <param name="Index">Bucket index.</param>
/// <param name="Label">"1", "2-5", ..., "41+".</param>
/// <param name="Start">First position.</param>
/// <param name="End">Last position, or null for the open last bucket.</param>
/// <param name="N">Sequences reaching the bucket.</param>
/// <param name="Tokens">Response positions in the bucket over all sequences.</param>
/// <param name="Kl">KL(pi_a || pi_b).</param>
/// <param name="KlReverse">KL(pi_b || pi_a).</param>
/// <param name="U">Incompleteness U.</param>
/// <param name="BaseFavoredRate">Base-favored rate of the realised tokens.</param>
/// <param name="Completes">METHOD.md's completion check: bucket mean U at most the margin above the bucket-1 mean U
/// (null when either bucket is empty).</param>
public sealed record BucketAggregate(int Index, string Label, int Start, int? End, int N, long Tokens,
    MeanWithError Kl, MeanWithError KlReverse, MeanWithError U, MeanWithError BaseFavoredRate, bool? Completes);

/// <summary>The dataset-level incompleteness profile: per position and per bucket.</summary>
/// <param name="Sequences">Sequences aggregated (including ones with an empty response).</param>
/// <param name="Tokens">Response positions aggregated.</param>
/// <param name="ByPosition">One row per position 1..max length.</param>
/// <param name="ByBucket">One row per bucket.</param>
/// <param name="CompletionMargin">The margin of the completion check.</param>
public sealed record ProfileAggregates(int Sequences, long Tokens, IReadOnlyList<PositionAggregate> ByPosition,
    IReadOnlyList<BucketAggregate> ByBucket, double CompletionMargin)
{
    /// <summary>The first bucket (after bucket 1) whose mean U is more than the margin above bucket 1's, i.e. where
    /// alignment stays incomplete; null when every non-empty bucket completes.</summary>
    public BucketAggregate? FirstIncompleteBucket => ByBucket.FirstOrDefault(b => b.Completes == false);
}

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

/// <summary>Difference of one bucket (or position) between two profiles: after - before, with the standard error of the
/// difference sqrt(se_before^2 + se_after^2) (the two profiles treated as independent samples).</summary>
/// <param name="Label">Bucket label, or the position as text.</param>
/// <param name="NBefore">Sequences in the first profile.</param>
/// <param name="NAfter">Sequences in the second profile.</param>
/// <param name="Kl">Change of mean KL(pi_a || pi_b).</param>
/// <param name="KlReverse">Change of mean KL(pi_b || pi_a).</param>
/// <param name="U">Change of mean U.</param>
/// <param name="BaseFavoredRate">Change of the base-favored rate.</param>
public sealed record ProfileDifference(string Label, int NBefore, int NAfter, MeanWithError Kl, MeanWithError KlReverse, MeanWithError U, MeanWithError BaseFavoredRate);

/// <summary>Before/after comparison of two profiles (e.g. the aligned model before and after targeted completion).</summary>
/// <param name="ByBucket">Per-bucket differences (buckets matched by label).</param>
/// <param name="ByPosition">Per-position differences over the positions both profiles reach.</param>
public sealed record ProfileComparison(IReadOnlyList<ProfileDifference> ByBucket, IReadOnlyList<ProfileDifference> ByPosition)
{
    /// <summary>Compares two profiles (after - before).</summary>
    /// <param name="before">The first profile.</param>
    /// <param name="after">The second profile.</param>
    /// <returns>The differences.</returns>
    /// <exception cref="ArgumentException">The profiles use different buckets.</exception>
    public static ProfileComparison Compare(ProfileAggregates before, ProfileAggregates after)
    {
        ArgumentNullException.ThrowIfNull(before);
        ArgumentNullException.ThrowIfNull(after);
        if (!before.ByBucket.Select(b => b.Label).SequenceEqual(after.ByBucket.Select(b => b.Label)))
            throw new ArgumentException("The two profiles use different position buckets; compare profiles made with the same BucketStarts.", nameof(after));
        var buckets = before.ByBucket.Zip(after.ByBucket, (b, a) =>
            new ProfileDifference(b.Label, b.N, a.N, Diff(b.Kl, a.Kl), Diff(b.KlReverse, a.KlReverse), Diff(b.U, a.U), Diff(b.BaseFavoredRate, a.BaseFavoredRate))).ToList();
        var positions = before.ByPosition.Zip(after.ByPosition, (b, a) =>
            new ProfileDifference(b.Position.ToString(System.Globalization.CultureInfo.InvariantCulture), b.N, a.N,
                Diff(b.Kl, a.Kl), Diff(b.KlReverse, a.KlReverse), Diff(b.U, a.U), Diff(b.BaseFavoredRate, a.BaseFavoredRate))).ToList();
        return new ProfileComparison(buckets, positions);
    }

    private static MeanWithError Diff(MeanWithError before, MeanWithError after) =>
        new(after.Mean - before.Mean, Math.Sqrt(before.StdErr * before.StdErr + after.StdErr * after.StdErr));
}
