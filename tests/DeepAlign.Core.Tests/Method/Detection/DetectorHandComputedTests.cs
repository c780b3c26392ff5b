using DeepAlign.Generation;
using DeepAlign.Method.Detection;
using DeepAlign.Testing;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>
/// Every number of a profile on table-driven models, worked out by hand. Vocabulary {0, 1, 2, 3}; eos = 2;
/// the prompt is [3]; kB = 3, tau = 0, two reported items, buckets 1 and 2+.
///
/// Position 1 (context [3]):  p_a = [0.6, 0.1, 0.2, 0.1],  p_b = [0.3, 0.4, 0.1, 0.2]
///   KL(a||b) = 0.6 ln 2 + 0.1 ln(1/4) + 0.2 ln 2 + 0.1 ln(1/2) = 0.5 ln 2 = 0.3465736
///   KL(b||a) = 0.3 ln(1/2) + 0.4 ln 4 + 0.1 ln(1/2) + 0.2 ln 2 = 0.6 ln 2 = 0.4158883   (asymmetric)
///   T = top-3 of p_b = {1, 0, 3}, p_b(T) = 0.9; l_b - l_a = [ln .5, ln 4, ln .5, ln 2] -> B = {1, 3}
///   m_b = 0.4 + 0.2 = 0.6, m_a = 0.1 + 0.1 = 0.2, U = 1 - 0.4 / 0.9 = 5/9
///   top items: (1: p_b 0.4, p_a 0.1), (3: p_b 0.2, p_a 0.1)
///   y = 1: r = ln 4 = 1.3862944 (base-favored);  y = 2: r = ln(0.1/0.2) = -ln 2 (not)
/// Position 2 (context [3, 1]): p_a = [0.5, 0.3, 0.1, 0.1],  p_b = [0.1, 0.2, 0.3, 0.4]
///   KL(a||b) = 0.5 ln 5 + 0.3 ln 1.5 + 0.1 ln(1/3) + 0.1 ln(1/4) = 0.6778687
///   KL(b||a) = 0.1 ln 0.2 + 0.2 ln(2/3) + 0.3 ln 3 + 0.4 ln 4 = 0.6420651
///   T = {3, 2, 1}, p_b(T) = 0.9; l_b - l_a on T = [ln 4, ln 3, ln(2/3)] -> B = {3, 2}
///   m_b = 0.7, m_a = 0.2, U = 1 - 0.5 / 0.9 = 4/9; top items (3: 0.4, 0.1), (2: 0.3, 0.1)
///   y = 0: r = ln(0.1/0.5) = -ln 5 = -1.6094379 (not base-favored)
/// Every other context: both models put 0.7 on token 2 and 0.1 elsewhere (identical): KL = 0, U = 1, r = 0.
/// </summary>
public class DetectorHandComputedTests
{
    private static readonly double Ln2 = Math.Log(2);
    private static readonly double KlAB1 = 0.5 * Ln2, KlBA1 = 0.6 * Ln2;
    private static readonly double KlAB2 = 0.5 * Math.Log(5) + 0.3 * Math.Log(1.5) + 0.1 * Math.Log(1.0 / 3) + 0.1 * Math.Log(0.25);
    private static readonly double KlBA2 = 0.1 * Math.Log(0.2) + 0.2 * Math.Log(2.0 / 3) + 0.3 * Math.Log(3) + 0.4 * Math.Log(4);
    private const double Tol = 1e-5;

    internal static (TableCausalLanguageModel Base, TableCausalLanguageModel Aligned) Pair()
    {
        var aligned = TableCausalLanguageModel.CreateBuilder(4).WithSpecialTokens(eos: [2])
            .When(3).Probabilities(0.6, 0.1, 0.2, 0.1)
            .When(3, 1).Probabilities(0.5, 0.3, 0.1, 0.1)
            .ByDefault().Probabilities(0.1, 0.1, 0.7, 0.1)
            .Build();
        var @base = TableCausalLanguageModel.CreateBuilder(4).WithSpecialTokens(eos: [2])
            .When(3).Probabilities(0.3, 0.4, 0.1, 0.2)
            .When(3, 1).Probabilities(0.1, 0.2, 0.3, 0.4)
            .ByDefault().Probabilities(0.1, 0.1, 0.7, 0.1)
            .Build();
        return (@base, aligned);
    }

    private static readonly ProfileOptions Options = new() { TopKBase = 3, ReportTopItems = 2, BucketStarts = [1, 2] };

    private static readonly ProfileInput Seq1 = new([3], [1, 0, 2]) { Id = "a" };
    private static readonly ProfileInput Seq2 = new([3], [2]) { Id = "b" };

    [Fact]
    public void Every_position_number_matches_the_hand_computation()
    {
        var (b, a) = Pair();
        var detector = new BaseFavoredTokenDetector(b, a, options: Options);
        var profiles = detector.ProfileBatch([Seq1, Seq2]);
        profiles.Should().HaveCount(2);
        var p = profiles[0].Positions;
        p.Should().HaveCount(3);

        p[0].Position.Should().Be(1);
        p[0].TokenId.Should().Be(1);
        p[0].KlAlignedBase.Should().BeApproximately(KlAB1, Tol);
        p[0].KlBaseAligned.Should().BeApproximately(KlBA1, Tol);
        p[0].LogRatio.Should().BeApproximately(Math.Log(4), Tol);
        p[0].BaseFavored.Should().BeTrue();
        p[0].MassBase.Should().BeApproximately(0.6, Tol);
        p[0].MassAligned.Should().BeApproximately(0.2, Tol);
        p[0].TopMassBase.Should().BeApproximately(0.9, Tol);
        p[0].Incompleteness.Should().BeApproximately(5.0 / 9, Tol);
        p[0].TopItems.Select(i => i.TokenId).Should().Equal(1L, 3L);
        p[0].TopItems[0].ProbBase.Should().BeApproximately(0.4, Tol);
        p[0].TopItems[0].ProbAligned.Should().BeApproximately(0.1, Tol);
        p[0].TopItems[1].ProbBase.Should().BeApproximately(0.2, Tol);
        p[0].TopItems[1].ProbAligned.Should().BeApproximately(0.1, Tol);

        p[1].TokenId.Should().Be(0);
        p[1].KlAlignedBase.Should().BeApproximately(KlAB2, Tol);
        p[1].KlBaseAligned.Should().BeApproximately(KlBA2, Tol);
        p[1].LogRatio.Should().BeApproximately(-Math.Log(5), Tol);
        p[1].BaseFavored.Should().BeFalse();
        p[1].MassBase.Should().BeApproximately(0.7, Tol);
        p[1].MassAligned.Should().BeApproximately(0.2, Tol);
        p[1].Incompleteness.Should().BeApproximately(4.0 / 9, Tol);
        p[1].TopItems.Select(i => i.TokenId).Should().Equal(3L, 2L);
        p[1].TopItems[1].ProbBase.Should().BeApproximately(0.3, Tol);
        p[1].TopItems[1].ProbAligned.Should().BeApproximately(0.1, Tol);

        // Position 3: identical distributions.
        p[2].KlAlignedBase.Should().Be(0);
        p[2].KlBaseAligned.Should().Be(0);
        p[2].LogRatio.Should().Be(0);
        p[2].BaseFavored.Should().BeFalse();
        p[2].Incompleteness.Should().Be(1);
        p[2].TopItems.Should().BeEmpty();

        var q = profiles[1].Positions.Should().ContainSingle().Subject;
        q.LogRatio.Should().BeApproximately(-Ln2, Tol);
        q.BaseFavored.Should().BeFalse();
        q.KlAlignedBase.Should().BeApproximately(KlAB1, Tol);
        q.Incompleteness.Should().BeApproximately(5.0 / 9, Tol);
    }

    [Fact]
    public void Aggregates_match_the_hand_computation()
    {
        var (b, a) = Pair();
        var detector = new BaseFavoredTokenDetector(b, a, options: Options with { BatchSize = 1 });
        var agg = new ProfileAggregator(Options);
        foreach (var s in detector.Profile([Seq1, Seq2])) agg.Add(s);
        var r = agg.Result();
        r.Sequences.Should().Be(2);
        r.Tokens.Should().Be(4);
        r.ByPosition.Select(x => x.N).Should().Equal(2, 1, 1);
        // Position 1: both sequences have KL = 0.5 ln 2 (SE 0) and U = 5/9; flags {1, 0}: rate 0.5,
        // sample SD sqrt(((1 - .5)^2 + (0 - .5)^2) / 1) = sqrt(0.5), SE = sqrt(0.5) / sqrt(2) = 0.5.
        var p1 = r.ByPosition[0];
        p1.Kl.Mean.Should().BeApproximately(KlAB1, Tol);
        p1.Kl.StdErr.Should().BeApproximately(0, Tol);
        p1.KlReverse.Mean.Should().BeApproximately(KlBA1, Tol);
        p1.U.Mean.Should().BeApproximately(5.0 / 9, Tol);
        p1.BaseFavoredRate.Mean.Should().BeApproximately(0.5, 1e-12);
        p1.BaseFavoredRate.StdErr.Should().BeApproximately(0.5, 1e-12);
        // Position 2: one sequence, no standard error.
        r.ByPosition[1].Kl.Mean.Should().BeApproximately(KlAB2, Tol);
        r.ByPosition[1].Kl.StdErr.Should().Be(double.NaN);
        // Bucket "2+": only sequence 1 reaches it; its bucket value is the mean of positions 2 and 3:
        // KL = (0.6778687 + 0) / 2, KL reverse = 0.6420651 / 2, U = (4/9 + 1) / 2 = 13/18, rate 0.
        var b2 = r.ByBucket[1];
        b2.Label.Should().Be("2+");
        b2.N.Should().Be(1);
        b2.Tokens.Should().Be(2);
        b2.Kl.Mean.Should().BeApproximately(KlAB2 / 2, Tol);
        b2.KlReverse.Mean.Should().BeApproximately(KlBA2 / 2, Tol);
        b2.U.Mean.Should().BeApproximately(13.0 / 18, Tol);
        b2.BaseFavoredRate.Mean.Should().Be(0);
        // Completion: 13/18 = 0.722 > 5/9 + 0.1 = 0.656, so bucket 2+ does not complete.
        r.ByBucket[0].Completes.Should().BeTrue();
        b2.Completes.Should().BeFalse();
        r.FirstIncompleteBucket!.Label.Should().Be("2+");
        // With a margin of 0.2 (0.722 <= 0.756) it completes.
        var loose = new ProfileAggregator(Options with { CompletionMargin = 0.2 });
        foreach (var s in detector.Profile([Seq1, Seq2])) loose.Add(s);
        loose.Result().FirstIncompleteBucket.Should().BeNull();
    }

    [Fact]
    public void Swapping_the_models_changes_the_numbers()
    {
        var (b, a) = Pair();
        var swapped = new BaseFavoredTokenDetector(a, b, options: Options).ProfileBatch([Seq1])[0].Positions[0];
        // KL directions exchange, r flips sign: a swapped direction or sign must not pass the test above.
        swapped.KlAlignedBase.Should().BeApproximately(KlBA1, Tol);
        swapped.KlBaseAligned.Should().BeApproximately(KlAB1, Tol);
        swapped.LogRatio.Should().BeApproximately(-Math.Log(4), Tol);
        swapped.BaseFavored.Should().BeFalse();
    }

    [Fact]
    public void Identical_models_give_zero_kl_unit_u_and_no_base_favored_token()
    {
        var (_, a) = Pair();
        var (_, a2) = Pair();
        var detector = new BaseFavoredTokenDetector(a2, a, options: Options);
        var agg = new ProfileAggregator(Options);
        foreach (var s in detector.Profile([Seq1, Seq2, new ProfileInput([0, 1], [3, 3, 1])])) agg.Add(s);
        var r = agg.Result();
        r.ByPosition.Should().AllSatisfy(p =>
        {
            p.Kl.Mean.Should().Be(0);
            p.KlReverse.Mean.Should().Be(0);
            p.U.Mean.Should().Be(1);
            p.BaseFavoredRate.Mean.Should().Be(0);
        });
        r.FirstIncompleteBucket.Should().BeNull();
    }

    [Fact]
    public void Generated_profile_forces_the_prefix_drops_the_stop_token_and_scores_like_teacher_forcing()
    {
        var (b, a) = Pair();
        var detector = new BaseFavoredTokenDetector(b, a, options: Options);
        // Forced [1]; the aligned model then picks argmax at [3, 1] = token 0, then at [3, 1, 0] token 2 = eos (dropped).
        var generated = detector.ProfileGenerated([new ProfileInput([3], [1, 3, 3]) { Id = "g" }],
            new GeneratedProfileOptions { ForcedPrefixTokens = 1, Generation = new GenerationOptions { MaxNewTokens = 8 } }).ToList();
        var g = generated.Should().ContainSingle().Subject;
        g.Id.Should().Be("g");
        g.ResponseIds.Should().Equal(1L, 0L);
        var forced = detector.ProfileBatch([new ProfileInput([3], [1, 0])])[0];
        g.Positions.Should().BeEquivalentTo(forced.Positions);
        g.Positions[1].KlAlignedBase.Should().BeApproximately(KlAB2, Tol);
    }

    [Fact]
    public void Responses_are_cut_to_max_response_tokens_and_progress_is_reported()
    {
        var (b, a) = Pair();
        var detector = new BaseFavoredTokenDetector(b, a, options: Options with { MaxResponseTokens = 2, BatchSize = 1 });
        var reports = new List<ProfileProgress>();
        var progress = new SyncProgress<ProfileProgress>(reports.Add);
        var profiles = detector.Profile([Seq1, Seq2], progress).ToList();
        profiles[0].Positions.Should().HaveCount(2);
        profiles[1].Index.Should().Be(1);
        reports.Should().Equal(new ProfileProgress(1, 2, 1), new ProfileProgress(2, 3, 2));
    }

    [Fact]
    public void Cancellation_stops_the_stream()
    {
        var (b, a) = Pair();
        var detector = new BaseFavoredTokenDetector(b, a, options: Options with { BatchSize = 1 });
        using var cts = new CancellationTokenSource();
        var act = () =>
        {
            foreach (var _ in detector.Profile([Seq1, Seq2, Seq1], cancellationToken: cts.Token)) cts.Cancel();
        };
        act.Should().Throw<OperationCanceledException>();
    }

    [Fact]
    public void Bad_inputs_and_options_are_named()
    {
        var (b, a) = Pair();
        var detector = new BaseFavoredTokenDetector(b, a, options: Options);
        detector.Invoking(d => d.ProfileBatch([new ProfileInput([], [1]) { Location = "f.jsonl:3" }]))
            .Should().Throw<DeepAlign.Data.DatasetFormatException>().WithMessage("*f.jsonl:3*prompt is empty*");
        detector.Invoking(d => d.ProfileBatch([new ProfileInput([3], [9]) { Location = "f.jsonl:4" }]))
            .Should().Throw<DeepAlign.Data.DatasetFormatException>().WithMessage("*f.jsonl:4*token id 9*");
        FluentActions.Invoking(() => new ProfileOptions { BatchSize = 0 }.Validate()).Should().Throw<ArgumentException>().WithMessage("*BatchSize*");
        FluentActions.Invoking(() => new ProfileOptions { Tau = -1 }.Validate()).Should().Throw<ArgumentException>().WithMessage("*ProfileOptions.Tau*");
        FluentActions.Invoking(() => new ProfileOptions { MaxResponseTokens = 0 }.Validate()).Should().Throw<ArgumentException>().WithMessage("*MaxResponseTokens*");
        FluentActions.Invoking(() => new ProfileOptions { BucketStarts = [2, 5] }.Validate()).Should().Throw<ArgumentException>().WithMessage("*BucketStarts*");
        FluentActions.Invoking(() => new GeneratedProfileOptions { ForcedPrefixTokens = -1 }.Validate()).Should().Throw<ArgumentException>().WithMessage("*ForcedPrefixTokens*");
        var wide = TableCausalLanguageModel.CreateBuilder(5).Build();
        FluentActions.Invoking(() => new BaseFavoredTokenDetector(wide, a)).Should().Throw<DeepAlign.Text.VocabularyMismatchException>().WithMessage("*logit widths differ*");
    }

    /// <summary>Reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
