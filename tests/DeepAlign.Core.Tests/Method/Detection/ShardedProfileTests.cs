using DeepAlign.Data;
using DeepAlign.Method.Detection;
using DeepAlign.Testing;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>Sharded profiling (docs/scale-out.md): the merge of shard partials equals one run over the whole dataset.</summary>
public class ShardedProfileTests
{
    private const string Fingerprint = "sha256:0123";

    private static List<ProfileInput> Inputs(int count, int vocab)
    {
        var rng = new Random(17);
        return Enumerable.Range(0, count).Select(i => new ProfileInput(
            Enumerable.Range(0, rng.Next(1, 6)).Select(_ => (long)rng.Next(3, vocab)).ToArray(),
            Enumerable.Range(0, rng.Next(0, 14)).Select(_ => (long)rng.Next(3, vocab)).ToArray()) { Id = $"r{i}" }).ToList();
    }

    private static ProfilePartialReport Partial(ShardSpec shard, int records, ProfileOptions options, ProfileStatistics stats, string fingerprint = Fingerprint) =>
        new() { Shard = shard, DatasetFingerprint = fingerprint, DatasetRecords = records, Options = options, Statistics = stats };

    [Fact]
    public void Merged_shards_equal_one_run_counts_exactly_and_means_to_1e12()
    {
        var config = TinyModelFactory.LlamaConfig(vocabSize: 96, initializerRange: 0.2);
        using var b = TinyModelFactory.Create(config, seed: 21);
        using var a = TinyModelFactory.Create(config, seed: 22);
        // Batch size 1: every sequence is computed alone in both runs, so a shard's rows are bit-identical to the single
        // run's; only the order of the sums differs.
        var options = new ProfileOptions { TopKBase = 10, BatchSize = 1, BucketStarts = [1, 2, 4, 8] };
        var detector = new BaseFavoredTokenDetector(b, a, options: options);
        var inputs = Inputs(13, 96);

        var whole = new ProfileAggregator(options);
        foreach (var p in detector.Profile(inputs)) whole.Add(p);
        var expected = whole.Result();

        const int n = 3;
        var parts = new List<ProfilePartialReport>();
        var covered = new List<int>();
        foreach (int k in new[] { 2, 0, 1 })
        {
            var shard = new ShardSpec(k, n);
            var rows = shard.Select(inputs).ToList();
            covered.AddRange(rows.Select(r => r.RecordIndex));
            rows.Should().OnlyContain(r => r.RecordIndex % n == k);
            var aggregator = new ProfileAggregator(options);
            foreach (var p in detector.Profile(rows.Select(r => r.Item))) aggregator.Add(p);
            // Through the JSON format, as the files travel between machines.
            parts.Add(ProfilePartialReport.FromJson(Partial(shard, inputs.Count, options, aggregator.Statistics()).ToJson(), $"shard{k}"));
        }
        covered.Order().Should().Equal(Enumerable.Range(0, inputs.Count), "the shards partition the records");
        var merged = ProfilePartialReport.Merge(parts).Aggregates;

        merged.Sequences.Should().Be(expected.Sequences).And.Be(13);
        merged.Tokens.Should().Be(expected.Tokens);
        merged.ByPosition.Should().HaveCount(expected.ByPosition.Count);
        for (int j = 0; j < expected.ByPosition.Count; j++)
        {
            var (x, y) = (merged.ByPosition[j], expected.ByPosition[j]);
            x.Position.Should().Be(y.Position);
            x.N.Should().Be(y.N);
            Close(x.Kl, y.Kl); Close(x.KlReverse, y.KlReverse); Close(x.U, y.U); Close(x.BaseFavoredRate, y.BaseFavoredRate);
        }
        merged.ByBucket.Should().HaveCount(expected.ByBucket.Count);
        for (int i = 0; i < expected.ByBucket.Count; i++)
        {
            var (x, y) = (merged.ByBucket[i], expected.ByBucket[i]);
            (x.Label, x.N, x.Tokens, x.Completes).Should().Be((y.Label, y.N, y.Tokens, y.Completes));
            Close(x.Kl, y.Kl); Close(x.KlReverse, y.KlReverse); Close(x.U, y.U); Close(x.BaseFavoredRate, y.BaseFavoredRate);
        }
        expected.ByPosition[0].N.Should().BeGreaterThan(5, "the test covers a non-trivial dataset");
    }

    private static void Close(MeanWithError x, MeanWithError y)
    {
        if (double.IsNaN(y.Mean)) x.Mean.Should().Be(double.NaN); else x.Mean.Should().BeApproximately(y.Mean, 1e-12);
        if (double.IsNaN(y.StdErr)) x.StdErr.Should().Be(double.NaN); else x.StdErr.Should().BeApproximately(y.StdErr, 1e-9);
    }

    [Fact]
    public void Merge_of_hand_made_statistics_derives_means_and_errors_from_the_totals()
    {
        // Position 1: shard 0 has values {1, 3}, shard 1 has {8}: mean 4, sample variance ((9 + 1 + 16) / 2) = 13,
        // SE = sqrt(13 / 3). An average of the shard means would give (2 + 8) / 2 = 5.
        var options = new ProfileOptions { BucketStarts = [1] };
        static QuantitySums S(int n, double sum, double sumSq) => new(n, [sum, sum, sum, sum], [sumSq, sumSq, sumSq, sumSq]);
        var s0 = new ProfileStatistics(2, 2, [S(2, 4, 10)], [S(2, 4, 10)], [2]);
        var s1 = new ProfileStatistics(1, 1, [S(1, 8, 64)], [S(1, 8, 64)], [1]);
        var merged = ProfilePartialReport.Merge([Partial(new ShardSpec(1, 2), 3, options, s1), Partial(new ShardSpec(0, 2), 3, options, s0)]).Aggregates;
        merged.Sequences.Should().Be(3);
        merged.ByPosition[0].N.Should().Be(3);
        merged.ByPosition[0].U.Mean.Should().Be(4);
        merged.ByPosition[0].U.StdErr.Should().BeApproximately(Math.Sqrt(13.0 / 3), 1e-12);
        merged.ByBucket[0].Tokens.Should().Be(3);
    }

    [Fact]
    public void Overlapping_missing_and_mismatched_shards_are_refused_with_typed_errors()
    {
        var options = new ProfileOptions();
        var empty = new ProfileAggregator(options).Statistics();
        ProfilePartialReport P(int k, int n, string fp = Fingerprint, ProfileOptions? o = null) => Partial(new ShardSpec(k, n), 4, o ?? options, empty, fp);

        Error(() => ProfilePartialReport.Merge([P(0, 2), P(0, 2), P(1, 2)])).Should().Be(ShardMergeError.Overlapping);
        Error(() => ProfilePartialReport.Merge([P(0, 3), P(2, 3)])).Should().Be(ShardMergeError.Missing);
        Error(() => ProfilePartialReport.Merge([P(0, 2), P(1, 2, "sha256:other")])).Should().Be(ShardMergeError.Mismatched);
        Error(() => ProfilePartialReport.Merge([P(0, 2), P(1, 3)])).Should().Be(ShardMergeError.Mismatched);
        Error(() => ProfilePartialReport.Merge([P(0, 2), P(1, 2, o: options with { Tau = 0.5 })])).Should().Be(ShardMergeError.Mismatched);
        Error(() => ProfilePartialReport.Merge([])).Should().Be(ShardMergeError.Missing);

        string json = P(0, 1).ToJson();
        Error(() => ProfilePartialReport.FromJson(json.Replace("\"schema_version\": 1", "\"schema_version\": 2"), "x.json")).Should().Be(ShardMergeError.Format);
        Error(() => ProfilePartialReport.FromJson(json.Replace(ProfilePartialReport.Kind, "deepalign.attack_partial"), "x.json")).Should().Be(ShardMergeError.Format);
        Error(() => ProfilePartialReport.FromJson("{", "x.json")).Should().Be(ShardMergeError.Format);
        Error(() => ProfilePartialReport.FromJson(json.Replace("\"index\": 0", "\"index\": 5"), "x.json")).Should().Be(ShardMergeError.Format);
        var e = Assert.Throws<ShardMergeException>(() => ProfilePartialReport.Merge([P(0, 2), P(0, 2)], ["a.json", "b.json"]));
        e.Message.Should().Contain("a.json").And.Contain("b.json");
    }

    private static ShardMergeError Error(Action merge) => Assert.Throws<ShardMergeException>(merge).Error;

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("3/8", 3, 8)]
    public void Shard_parses_I_over_N(string text, int index, int count)
    {
        var s = ShardSpec.Parse(text);
        (s.Index, s.Count).Should().Be((index, count));
        s.ToString().Should().Be(text);
    }

    [Theory]
    [InlineData("4/4")]
    [InlineData("1/0")]
    [InlineData("-1/3")]
    [InlineData("1")]
    [InlineData("a/b")]
    [InlineData("1/2/3")]
    public void Bad_shards_are_usage_errors(string text) => Assert.Throws<ArgumentException>(() => ShardSpec.Parse(text));

    [Fact]
    public void Shards_partition_any_dataset_by_index_mod_n()
    {
        for (int n = 1; n <= 5; n++)
        {
            var all = Enumerable.Range(0, n).SelectMany(k => new ShardSpec(k, n).Select(Enumerable.Range(100, 23)).Select(t => (t.RecordIndex, t.Item, k))).ToList();
            all.Select(t => t.RecordIndex).Order().Should().Equal(Enumerable.Range(0, 23));
            all.Should().OnlyContain(t => t.Item == 100 + t.RecordIndex && t.RecordIndex % n == t.k);
        }
    }
}
