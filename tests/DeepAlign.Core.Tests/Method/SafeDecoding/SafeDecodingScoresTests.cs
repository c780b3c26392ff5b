using DeepAlign.Generation;
using DeepAlign.Method.SafeDecoding;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static DeepAlign.Tests.Method.Contrastive.ContrastiveTestModels;

namespace DeepAlign.Tests.Method.SafeDecoding;

/// <summary>
/// Scores SafeDecoding hands to the generator, against numbers computed on paper from two 6-token table models after
/// the prompt [0]:
///   p_o = (0.40, 0.25, 0.15, 0.10, 0.06, 0.04)   original (ranks 0..5 in id order)
///   p_e = (0.05, 0.30, 0.02, 0.45, 0.10, 0.08)   expert   (order 3, 1, 4, 5, 0, 2)
/// Top-k intersections: k = 1: {} ; k = 2: {1} ; k = 3: {1} ; k = 4: {1, 3} ; k = 5: {0, 1, 3, 4} ; k = 6: all.
/// The pair is asymmetric: swapping the models changes the weights (3 p_o - 2 p_e instead of 3 p_e - 2 p_o).
/// </summary>
public class SafeDecodingScoresTests
{
    public SafeDecodingScoresTests() => torch.set_num_threads(1);

    internal static readonly double[] OriginalP = { 0.40, 0.25, 0.15, 0.10, 0.06, 0.04 };
    internal static readonly double[] ExpertP = { 0.05, 0.30, 0.02, 0.45, 0.10, 0.08 };
    private const float Tol = 2e-5f;

    /// <summary>A 6-token table model giving <paramref name="p"/> after <paramref name="context"/> and a fixed other distribution elsewhere.</summary>
    internal static TableCausalLanguageModel Hand6(double[] p, long[] context, double[]? elsewhere = null) =>
        TableCausalLanguageModel.CreateBuilder(6)
            .ByDefault().Probabilities(elsewhere ?? new[] { 0.1, 0.3, 0.2, 0.15, 0.15, 0.1 })
            .When(context).Probabilities(p)
            .Build();

    private static (float[] Scores, long Chosen, SafeDecodingTraceEntry Trace) FirstStep(SafeDecodingOptions options, long[]? prefix = null, bool sample = false, long seed = 0)
    {
        var prompt = new long[] { 0 };
        var context = prompt.Concat(prefix ?? Array.Empty<long>()).ToArray();
        using var original = Hand6(OriginalP, context);
        using var expert = Hand6(ExpertP, context);
        using var decoder = new SafeDecoder(original, expert, options with { Trace = true });
        var forcer = new RecordingForcer();
        var request = new GenerationRequest(prompt) { ForcedPrefixIds = prefix ?? Array.Empty<long>(), Seed = seed };
        var result = decoder.Generate(new[] { request }, new GenerationOptions { MaxNewTokens = 1, TokenForcer = forcer, DoSample = sample }).Single();
        original.ForwardCallCount.Should().Be(1, "the prefill is one forward pass of the original model");
        expert.ForwardCallCount.Should().Be(1, "and one of the expert");
        return (forcer.Seen.Single().Scores, result.GeneratedIds.Single(), decoder.LastTrace!.Single().Single());
    }

    private static void ShouldMatch(float[] actual, params double[] expected)
    {
        actual.Should().HaveCount(expected.Length);
        for (int v = 0; v < expected.Length; v++)
        {
            if (double.IsNegativeInfinity(expected[v])) actual[v].Should().Be(float.NegativeInfinity, $"token {v} lies outside the sample space");
            else actual[v].Should().BeApproximately((float)expected[v], Tol, $"token {v}");
        }
    }

    [Fact]
    public void Default_alpha_three_with_c_three_grows_the_intersection_to_k_five_and_floors_the_negative_weight()
    {
        // c = 3: k = 3 and k = 4 give 1 and 2 common tokens; k = 5 gives {0, 1, 3, 4} (4 >= 3: the tie r = 4 of tokens 0 and 4
        // lets the set exceed c). Weights 3 p_e - 2 p_o: w0 = 0.15 - 0.80 = -0.65 -> floor 1e-8, w1 = 0.90 - 0.50 = 0.40,
        // w3 = 1.35 - 0.20 = 1.15, w4 = 0.30 - 0.12 = 0.18. Scores ln w: ln 1e-8 = -18.420681, -0.916291, 0.139762, -1.714798.
        // Normalised (sum 1.73): P3 = 0.664740, P1 = 0.231214, P4 = 0.104046, P0 = 5.78e-9. Greedy: 3 (the original alone: 0).
        var (scores, chosen, trace) = FirstStep(new SafeDecodingOptions { MinCommonTokens = 3 });
        ShouldMatch(scores, -18.420681, -0.916291, double.NegativeInfinity, 0.139762, -1.714798, double.NegativeInfinity);
        chosen.Should().Be(3);
        trace.Steered.Should().BeTrue();
        trace.SampleSpaceSize.Should().Be(4);
        trace.IntersectionDepth.Should().Be(5);
        trace.ResponsePosition.Should().Be(1);
        trace.OriginalProbability.Should().BeApproximately(0.10, 1e-6);
        trace.ExpertProbability.Should().BeApproximately(0.45, 1e-6);
        trace.SafeDecodingProbability.Should().BeApproximately(1.15 / 1.73, 1e-6);
    }

    [Fact]
    public void C_one_stops_at_the_first_common_token_and_c_two_at_k_four()
    {
        // c = 1: k = 1 gives no common token, k = 2 gives {1}: the only token left.
        var (scores, chosen, trace) = FirstStep(new SafeDecodingOptions { MinCommonTokens = 1 });
        ShouldMatch(scores, double.NegativeInfinity, -0.916291, double.NegativeInfinity, double.NegativeInfinity, double.NegativeInfinity, double.NegativeInfinity);
        chosen.Should().Be(1);
        trace.IntersectionDepth.Should().Be(2);
        trace.SafeDecodingProbability.Should().BeApproximately(1.0, 1e-6);
        // Sampling can only draw token 1 too.
        for (long seed = 0; seed < 5; seed++) FirstStep(new SafeDecodingOptions { MinCommonTokens = 1 }, sample: true, seed: seed).Chosen.Should().Be(1);

        // c = 2: k = 2, 3 give one common token, k = 4 gives {1, 3}.
        (scores, chosen, trace) = FirstStep(new SafeDecodingOptions { MinCommonTokens = 2 });
        ShouldMatch(scores, double.NegativeInfinity, -0.916291, double.NegativeInfinity, 0.139762, double.NegativeInfinity, double.NegativeInfinity);
        trace.IntersectionDepth.Should().Be(4);
        trace.SampleSpaceSize.Should().Be(2);
        chosen.Should().Be(3);
    }

    [Fact]
    public void Default_c_five_takes_the_whole_six_token_vocabulary()
    {
        // c = 5: only k = 6 has 5 common tokens. alpha = 3: w2 = 0.06 - 0.30 < 0 -> floor, w5 = 0.24 - 0.08 = 0.16.
        var (scores, chosen, trace) = FirstStep(new SafeDecodingOptions());
        ShouldMatch(scores, -18.420681, -0.916291, -18.420681, 0.139762, -1.714798, Math.Log(0.16));
        trace.IntersectionDepth.Should().Be(6);
        trace.SampleSpaceSize.Should().Be(6);
        chosen.Should().Be(3);
    }

    [Fact]
    public void Alpha_mixes_the_probabilities_linearly_inside_the_sample_space()
    {
        // Sample space {0, 1, 3, 4} (c = 3). alpha = 0: ln p_o; alpha = 1: ln p_e; alpha = 0.5: ln((p_o + p_e) / 2):
        // (0.225, 0.275, 0.275, 0.08) -> ties 1 and 3 at 0.275 (greedy takes the lower id, 1).
        var c3 = new SafeDecodingOptions { MinCommonTokens = 3 };
        var ninf = double.NegativeInfinity;
        var (s0, chosen0, _) = FirstStep(c3 with { Alpha = 0 });
        ShouldMatch(s0, Math.Log(0.40), Math.Log(0.25), ninf, Math.Log(0.10), Math.Log(0.06), ninf);
        chosen0.Should().Be(0);
        var (s1, chosen1, _) = FirstStep(c3 with { Alpha = 1 });
        ShouldMatch(s1, Math.Log(0.05), Math.Log(0.30), ninf, Math.Log(0.45), Math.Log(0.10), ninf);
        chosen1.Should().Be(3);
        var (sHalf, _, _) = FirstStep(c3 with { Alpha = 0.5 });
        ShouldMatch(sHalf, Math.Log(0.225), Math.Log(0.275), ninf, Math.Log(0.275), Math.Log(0.08), ninf);
        // alpha = 2: 2 p_e - p_o = (-0.30, 0.35, -, 0.80, 0.14, -): token 0 floored.
        var (s2, _, _) = FirstStep(c3 with { Alpha = 2 });
        ShouldMatch(s2, Math.Log(1e-8), Math.Log(0.35), ninf, Math.Log(0.80), Math.Log(0.14), ninf);
        // A larger floor is used as given.
        var (sFloor, _, _) = FirstStep(c3 with { Alpha = 2, ProbabilityFloor = 1e-3 });
        sFloor[0].Should().BeApproximately((float)Math.Log(1e-3), Tol);
    }

    [Fact]
    public void Alpha_zero_keeps_the_original_log_probabilities_bit_for_bit_inside_the_sample_space()
    {
        var c3 = new SafeDecodingOptions { MinCommonTokens = 3, Alpha = 0 };
        var (scores, _, _) = FirstStep(c3);
        using var original = Hand6(OriginalP, new long[] { 0 });
        var lo = OriginalLogProbabilities(original, new long[] { 0 });
        foreach (var v in new[] { 0, 1, 3, 4 }) scores[v].Should().Be(lo[v], $"token {v}");
    }

    [Fact]
    public void A_forced_prefix_takes_response_positions_so_only_the_rest_of_the_window_is_steered()
    {
        // Forced prefix [5]: the first chosen token is j = 2 <= m = 2, still steered.
        var (scores, _, trace) = FirstStep(new SafeDecodingOptions { MinCommonTokens = 3 }, prefix: new long[] { 5 });
        trace.ResponsePosition.Should().Be(2);
        trace.Steered.Should().BeTrue();
        scores[3].Should().BeApproximately(0.139762f, Tol);

        // Forced prefix [5, 5] with m = 2: j = 3, nothing is steered and the expert never runs.
        var context = new long[] { 0, 5, 5 };
        using var original = Hand6(OriginalP, context);
        using var expert = Hand6(ExpertP, context);
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { MinCommonTokens = 3, Trace = true });
        var forcer = new RecordingForcer();
        var result = decoder.Generate(new[] { GenerationRequest.WithPrefix(new long[] { 0 }, new long[] { 5, 5 }) },
            new GenerationOptions { MaxNewTokens = 3, TokenForcer = forcer, StopTokenIds = Array.Empty<long>() }).Single();
        expert.ForwardCallCount.Should().Be(0);
        result.GeneratedIds[0].Should().Be(0, "the original's own greedy token");
        forcer.Seen[0].Scores.Should().Equal(OriginalLogProbabilities(original, context));
        decoder.LastTrace!.Single().Should().OnlyContain(e => !e.Steered && e.ExpertProbability == null && e.IntersectionDepth == null);
        decoder.LastTrace!.Single().Select(e => e.ResponsePosition).Should().Equal(3, 4, 5);

        // With CountForcedPrefix off, the first m tokens the decoder chooses are steered whatever the prefix.
        using var decoder2 = new SafeDecoder(original, expert, new SafeDecodingOptions { MinCommonTokens = 3, CountForcedPrefix = false, Trace = true });
        var steered = decoder2.Generate(new[] { GenerationRequest.WithPrefix(new long[] { 0 }, new long[] { 5, 5 }) },
            new GenerationOptions { MaxNewTokens = 3, StopTokenIds = Array.Empty<long>() }).Single();
        steered.GeneratedIds[0].Should().Be(3);
        decoder2.LastTrace!.Single().Select(e => e.Steered).Should().Equal(true, true, false);
        expert.ForwardCallCount.Should().Be(2, "the expert runs for the prefill and the second steered step only");
    }

    [Fact]
    public void Scores_match_the_authors_loop_on_random_distributions()
    {
        // An independent, literal reference: grow k from c until the two top-k lists share c tokens, mix the
        // probabilities in float64 and floor non-positive weights at 1e-8 (tokens sorted by decreasing log-probability,
        // ties by id). Hashed table models (vocab 40) give many contexts; several c and alpha.
        const int vocab = 40;
        foreach (var (c, alpha, sharpness) in new[] { (1, 3.0, 1f), (5, 3.0, 1f), (5, 3.0, 4f), (10, 1.5, 2f), (3, 0.0, 3f), (7, 6.0, 0.5f), (40, 3.0, 1f) })
        {
            using var original = Hashed(vocab, sharpness, salt: 11);
            using var expert = Hashed(vocab, sharpness, salt: 12);
            using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { MinCommonTokens = c, Alpha = alpha, M = 6 });
            var forcer = new RecordingForcer();
            var requests = new[] { new GenerationRequest(new long[] { 1, 2 }), new GenerationRequest(new long[] { 3 }), GenerationRequest.WithPrefix(new long[] { 4 }, new long[] { 5 }) };
            decoder.Generate(requests, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = Array.Empty<long>(), DoSample = true, Seed = c, TokenForcer = forcer });
            var results = decoder.Generate(requests, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = Array.Empty<long>(), DoSample = true, Seed = c });
            int checkedSteps = 0;
            foreach (var (row, position, scores) in forcer.Seen)
            {
                if (position > 6) continue;
                var request = requests[row];
                var generated = results[row].GeneratedIds.Take(position - 1 - request.ForcedPrefixIds.Count);
                var context = request.PromptIds.Concat(request.ForcedPrefixIds).Concat(generated).ToArray();
                var lo = OriginalLogProbabilities(original, context).Select(x => (double)x).ToArray();
                var le = OriginalLogProbabilities(expert, context).Select(x => (double)x).ToArray();
                var expected = AuthorsStep(lo, le, c, alpha);
                for (int v = 0; v < vocab; v++)
                {
                    if (double.IsNegativeInfinity(expected[v])) scores[v].Should().Be(float.NegativeInfinity, $"c {c}, alpha {alpha}, row {row}, j {position}, token {v}");
                    else scores[v].Should().BeApproximately((float)expected[v], 2e-5f * Math.Max(1, Math.Abs((float)expected[v])), $"c {c}, alpha {alpha}, row {row}, j {position}, token {v}");
                }
                checkedSteps++;
            }
            checkedSteps.Should().Be(6 + 6 + 5);
        }
    }

    /// <summary>The authors' per-step procedure written out literally (a loop over k and sets), in float64.</summary>
    internal static double[] AuthorsStep(double[] lo, double[] le, int c, double alpha, double floor = 1e-8)
    {
        int vocab = lo.Length;
        var orderO = Enumerable.Range(0, vocab).OrderByDescending(v => lo[v]).ToArray(); // LINQ sorts are stable: ties by id
        var orderE = Enumerable.Range(0, vocab).OrderByDescending(v => le[v]).ToArray();
        var common = new HashSet<int>();
        for (int k = c; k <= vocab; k++)
        {
            common = orderO.Take(k).ToHashSet();
            common.IntersectWith(orderE.Take(k));
            if (common.Count >= c) break;
        }
        var scores = Enumerable.Repeat(double.NegativeInfinity, vocab).ToArray();
        foreach (var v in common)
        {
            double po = Math.Exp(lo[v]), pe = Math.Exp(le[v]);
            double w = po + alpha * (pe - po);
            scores[v] = Math.Log(w > 0 ? w : floor);
        }
        return scores;
    }

    /// <summary>float32 log-softmax of a table model's logits after <paramref name="context"/>, as the scorer computes it.</summary>
    internal static float[] OriginalLogProbabilities(TableCausalLanguageModel model, long[] context)
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.tensor(model.LogitsFor(context), new long[] { 1, model.VocabSize });
        return logits.log_softmax(-1).data<float>().ToArray();
    }
}
