using DeepAlign.Generation;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Generation;

/// <summary>Temperature, top-k, top-p and sampling against distributions worked out by hand.</summary>
public class LogitsProcessingTests
{
    public LogitsProcessingTests() => torch.set_num_threads(1);

    // Probabilities in scrambled order so that the sort/scatter of top-p is exercised: ranks 0.5 > 0.2 > 0.15 > 0.1 > 0.05.
    private static readonly double[] P = { 0.1, 0.5, 0.05, 0.2, 0.15 };

    private static Tensor LogScores(params double[][] rows) =>
        tensor(rows.SelectMany(r => r.Select(p => p == 0 ? float.NegativeInfinity : (float)Math.Log(p))).ToArray(),
            new long[] { rows.Length, rows[0].Length }, ScalarType.Float32);

    private static double[] Distribution(Tensor processed, int row = 0)
    {
        using var r = processed[row];
        using var p = r.to(ScalarType.Float64).softmax(-1);
        return p.data<double>().ToArray();
    }

    private static void ShouldBe(double[] actual, params double[] expected) =>
        actual.Should().BeEquivalentTo(expected, o => o.WithStrictOrdering()
            .Using<double>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-6)).WhenTypeIs<double>());

    [Fact]
    public void Temperature_two_gives_square_roots_renormalised()
    {
        using var s = LogScores(P);
        using var t = LogitsProcessing.ApplyTemperature(s, 2.0);
        double z = P.Sum(Math.Sqrt);
        ShouldBe(Distribution(t), P.Select(p => Math.Sqrt(p) / z).ToArray());
    }

    [Fact]
    public void Top_k_keeps_the_k_best_tokens()
    {
        using var s = LogScores(P);
        using var k2 = LogitsProcessing.ApplyTopK(s, 2);
        ShouldBe(Distribution(k2), 0, 0.5 / 0.7, 0, 0.2 / 0.7, 0);
        using var k0 = LogitsProcessing.ApplyTopK(s, 0);
        ShouldBe(Distribution(k0), P);
        using var kBig = LogitsProcessing.ApplyTopK(s, 50);
        ShouldBe(Distribution(kBig), P);
    }

    [Fact]
    public void Top_k_keeps_ties_with_the_kth_score()
    {
        using var s = tensor(new float[] { 3, 2, 2, 0 }, new long[] { 1, 4 });
        using var k2 = LogitsProcessing.ApplyTopK(s, 2);
        var d = Distribution(k2);
        double z = Math.Exp(3) + 2 * Math.Exp(2);
        ShouldBe(d, Math.Exp(3) / z, Math.Exp(2) / z, Math.Exp(2) / z, 0);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p_including_the_crossing_token()
    {
        using var s = LogScores(P);
        using (var p06 = LogitsProcessing.ApplyTopP(s, 0.6)) // 0.5 < 0.6, 0.5 + 0.2 >= 0.6: keep {0.5, 0.2}
            ShouldBe(Distribution(p06), 0, 0.5 / 0.7, 0, 0.2 / 0.7, 0);
        using (var p075 = LogitsProcessing.ApplyTopP(s, 0.75)) // 0.7 < 0.75, 0.85 >= 0.75: keep {0.5, 0.2, 0.15}
            ShouldBe(Distribution(p075), 0, 0.5 / 0.85, 0, 0.2 / 0.85, 0.15 / 0.85);
        using (var p04 = LogitsProcessing.ApplyTopP(s, 0.4)) // the best token alone already reaches 0.4
            ShouldBe(Distribution(p04), 0, 1, 0, 0, 0);
        using (var p1 = LogitsProcessing.ApplyTopP(s, 1.0))
            ShouldBe(Distribution(p1), P);
    }

    [Fact]
    public void Top_p_works_row_by_row()
    {
        using var s = LogScores(P, new[] { 0.05, 0.05, 0.3, 0.3, 0.3 });
        using var f = LogitsProcessing.ApplyTopP(s, 0.55);
        ShouldBe(Distribution(f, 0), 0, 0.5 / 0.7, 0, 0.2 / 0.7, 0);
        ShouldBe(Distribution(f, 1), 0, 0, 0.5, 0.5, 0); // ties keep index order: tokens 2 and 3
    }

    [Fact]
    public void Temperature_is_applied_before_top_p()
    {
        // T = 0.5 squares the probabilities: 0.25, 0.04, 0.0225, 0.01, 0.0025 (sum 0.325). The top token has 0.769 < 0.8,
        // the top two 0.892 >= 0.8, so top-p 0.8 keeps two tokens; on the untempered distribution it would keep three.
        using var s = LogScores(P);
        using var f = LogitsProcessing.Process(s, temperature: 0.5, topK: 0, topP: 0.8);
        ShouldBe(Distribution(f), 0, 0.25 / 0.29, 0, 0.04 / 0.29, 0);
    }

    [Fact]
    public void Top_k_is_applied_before_top_p_and_top_p_sees_the_renormalised_mass()
    {
        // Top-3 renormalised: 0.588, 0.235, 0.176; 0.588 < 0.8 <= 0.824 so top-p keeps two. Top-p alone would keep three.
        using var s = LogScores(P);
        using var f = LogitsProcessing.Process(s, new GenerationOptions { DoSample = true, TopK = 3, TopP = 0.8 });
        ShouldBe(Distribution(f), 0, 0.5 / 0.7, 0, 0.2 / 0.7, 0);
        using var alone = LogitsProcessing.ApplyTopP(s, 0.8);
        ShouldBe(Distribution(alone), 0, 0.5 / 0.85, 0, 0.2 / 0.85, 0.15 / 0.85);
    }

    [Fact]
    public void Inverse_cdf_sampling_picks_the_token_whose_interval_holds_u()
    {
        // p = 0.5, 0, 0.3, 0.2: intervals [0, 0.5) -> 0, (empty) -> 1, [0.5, 0.8) -> 2, [0.8, 1) -> 3.
        var rows = Enumerable.Repeat(new[] { 0.5, 0, 0.3, 0.2 }, 6).ToArray();
        using var s = LogScores(rows);
        using var ids = TokenSampler.Sample(s, new[] { 0.0, 0.49, 0.51, 0.79, 0.81, 0.999999 });
        ids.data<long>().ToArray().Should().Equal(0, 0, 2, 2, 3, 3);
    }

    [Fact]
    public void Sampling_frequencies_match_the_processed_distribution()
    {
        const int n = 20000;
        using var one = LogScores(P);
        using var s = one.expand(n, P.Length).contiguous();
        using var processed = LogitsProcessing.Process(s, temperature: 1.0, topK: 4, topP: 0.9);
        var uniforms = Enumerable.Range(0, n).Select(i => TokenSampler.Uniform(1234, i)).ToArray();
        using var ids = TokenSampler.Sample(processed, uniforms);
        var counts = new int[P.Length];
        foreach (var id in ids.data<long>().ToArray()) counts[id]++;
        // top-4 removes 0.05; renormalised 0.5/0.95 ... ; cumulative 0.526, 0.737, 0.895 < 0.9, so top-p keeps all four.
        var expected = new[] { 0.1 / 0.95, 0.5 / 0.95, 0, 0.2 / 0.95, 0.15 / 0.95 };
        counts[2].Should().Be(0);
        for (int v = 0; v < P.Length; v++)
        {
            double sigma = Math.Sqrt(n * expected[v] * (1 - expected[v]));
            ((double)counts[v]).Should().BeApproximately(n * expected[v], 5 * sigma + 1, $"token {v}");
        }
    }

    [Theory]
    [InlineData(1.0, 0, 0.9)]
    [InlineData(1.0, 0, 0.3)]
    [InlineData(0.7, 0, 0.95)]
    [InlineData(2.0, 0, 0.99)]
    [InlineData(1.0, 1, 1.0)]
    [InlineData(1.0, 3, 1.0)]
    [InlineData(0.7, 10, 0.5)]
    [InlineData(1.3, 100, 0.8)]
    [InlineData(1.0, 500, 0.9)]
    public void The_generators_host_sampler_samples_exactly_the_processed_distribution(double temperature, int topK, double topP)
    {
        // Scores rounded to 0.25 create many ties; a few -inf entries; a nearly flat row makes the nucleus exceed the
        // sampler's first candidate pool. The host sampler must match softmax(Process(...)) token for token.
        const int vocab = 300;
        var rng = new Random(17);
        var data = new float[4 * vocab];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(Math.Round(rng.NextDouble() * 12) / 4);
        for (int v = 0; v < vocab; v++) data[2 * vocab + v] = 0.001f * (v % 7);          // nearly flat row
        for (int v = 0; v < 40; v++) data[3 * vocab + v * 7] = float.NegativeInfinity;     // excluded tokens
        using var scores = tensor(data, new long[] { 4, vocab });
        using var processed = LogitsProcessing.Process(scores, temperature, topK, topP);
        using var reference = processed.to(ScalarType.Float64).softmax(-1);
        var expected = reference.data<double>().ToArray();
        var settings = new SamplingSettings { DoSample = true, Temperature = temperature, TopK = topK, TopP = topP };
        for (int r = 0; r < 4; r++)
        {
            var (ids, probs) = TokenSampler.Distribution(data.AsSpan(r * vocab, vocab), settings);
            var actual = new double[vocab];
            for (int i = 0; i < ids.Length; i++) actual[ids[i]] += probs[i];
            for (int v = 0; v < vocab; v++)
            {
                actual[v].Should().BeApproximately(expected[r * vocab + v], 1e-9, $"row {r}, token {v}");
                (actual[v] > 0).Should().Be(expected[r * vocab + v] > 0, $"support of row {r}, token {v}");
            }
            // With a filter the CDF runs in decreasing score order, ties by index.
            if (topK > 0 || topP < 1)
                for (int i = 1; i < ids.Length; i++)
                {
                    float a = data[r * vocab + ids[i - 1]], b = data[r * vocab + ids[i]];
                    (a > b || (a == b && ids[i - 1] < ids[i])).Should().BeTrue($"row {r}: CDF order at {i}");
                }
        }
        // And a draw through the options path lands inside the processed support.
        var options = new GenerationOptions { DoSample = true, Temperature = temperature, TopK = topK, TopP = topP };
        using var drawn = TokenSampler.Sample(scores, options, new[] { 0.1, 0.5, 0.9, 0.99 });
        var tokens = drawn.data<long>().ToArray();
        var support = reference.data<double>().ToArray();
        for (int r = 0; r < 4; r++) support[r * vocab + (int)tokens[r]].Should().BeGreaterThan(0);
    }

    [Fact]
    public void Options_path_sampling_frequencies_match_the_processed_distribution()
    {
        const int n = 20000;
        using var one = LogScores(P);
        using var s = one.expand(n, P.Length).contiguous();
        var uniforms = Enumerable.Range(0, n).Select(i => TokenSampler.Uniform(99, i)).ToArray();
        using var ids = TokenSampler.Sample(s, new GenerationOptions { DoSample = true, Temperature = 0.5, TopP = 0.95 }, uniforms);
        var counts = new int[P.Length];
        foreach (var id in ids.data<long>().ToArray()) counts[id]++;
        // T = 0.5: 0.01, 0.25, 0.0025, 0.04, 0.0225 over 0.325; cumulative 0.769, 0.892, 0.962 >= 0.95: keep three.
        var expected = new[] { 0, 0.25 / 0.3125, 0, 0.04 / 0.3125, 0.0225 / 0.3125 };
        for (int v = 0; v < P.Length; v++)
        {
            double sigma = Math.Sqrt(n * expected[v] * (1 - expected[v]));
            ((double)counts[v]).Should().BeApproximately(n * expected[v], 5 * sigma + 1, $"token {v}");
        }
    }

    [Fact]
    public void Host_sampler_refuses_invalid_rows_and_settings_naming_them()
    {
        var scores = new float[] { 0, -1, -2, float.NaN, 0, 0, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity };
        var greedy = Enumerable.Repeat(SamplingSettings.Greedy, 3).ToArray();
        var act = () => TokenSampler.Choose(scores, 3, 3, greedy, new double[3]);
        act.Should().Throw<ArgumentException>().WithMessage("Row 1 *NaN*");
        scores[3] = 0;
        act.Should().Throw<ArgumentException>().WithMessage("Row 2 *negative infinity*");
        var bad = new[] { SamplingSettings.Greedy, new SamplingSettings { DoSample = true, Temperature = 0 }, SamplingSettings.Greedy };
        var badSettings = () => TokenSampler.Choose(new float[9], 3, 3, bad, new double[3]);
        badSettings.Should().Throw<ArgumentException>().WithMessage("*Temperature*");
        TokenSampler.Choose(new float[] { 0, 1, 1, 3, 2, 3 }, 2, 3, greedy[..2], new double[2]).Should().Equal(1, 0);
    }

    [Fact]
    public void Greedy_takes_the_first_maximum()
    {
        using var s = tensor(new float[] { 1, 3, 3, 2, 0, 0, 0, 5 }, new long[] { 2, 4 });
        using var ids = TokenSampler.Greedy(s);
        ids.data<long>().ToArray().Should().Equal(1, 3);
    }

    [Fact]
    public void Uniform_draws_are_deterministic_in_range_and_seed_dependent()
    {
        var a = Enumerable.Range(0, 1000).Select(i => TokenSampler.Uniform(7, i)).ToArray();
        var b = Enumerable.Range(0, 1000).Select(i => TokenSampler.Uniform(7, i)).ToArray();
        var c = Enumerable.Range(0, 1000).Select(i => TokenSampler.Uniform(8, i)).ToArray();
        a.Should().Equal(b);
        a.Should().OnlyContain(u => u >= 0 && u < 1);
        a.Zip(c).Count(x => x.First == x.Second).Should().Be(0);
        a.Average().Should().BeApproximately(0.5, 0.05);
        TokenSampler.RowSeed(1, 0).Should().NotBe(TokenSampler.RowSeed(1, 1));
    }

    [Fact]
    public void Options_validation_names_the_field()
    {
        new GenerationOptions().Validate().Should().NotBeNull();
        FluentActions.Invoking(() => new GenerationOptions { MaxNewTokens = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("MaxNewTokens");
        FluentActions.Invoking(() => new GenerationOptions { Temperature = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Temperature");
        FluentActions.Invoking(() => new GenerationOptions { TopK = -1 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("TopK");
        FluentActions.Invoking(() => new GenerationOptions { TopP = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("TopP");
        FluentActions.Invoking(() => new GenerationOptions { TopP = 1.5 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("TopP");
        FluentActions.Invoking(() => new GenerationOptions { StopTokenIds = new long[] { -1 } }.Validate()).Should().Throw<ArgumentException>().WithParameterName("StopTokenIds");
    }
}
