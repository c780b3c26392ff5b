using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static DeepAlign.Tests.Method.Contrastive.ContrastiveTestModels;

namespace DeepAlign.Tests.Method.Contrastive;

/// <summary>
/// Scores the decoder hands to the generator, against numbers computed on paper from the table models'
/// distributions after the prompt [0]:
///   p_a = (0.5, 0.3, 0.09, 0.08, 0.03)       aligned
///   p_b = (0.2, 0.5, 0.25, 0.0497, 0.0003)   base
/// Swapping l_a and l_b changes every expected vector below (e.g. full alpha = 1 would give 2 l_b - l_a =
/// (-2.5257, -0.1823, -0.3646, -3.4778, -12.7169) and a plausibility set {0, 1, 2} from p_b).
/// </summary>
public class ContrastiveScoresTests
{
    public ContrastiveScoresTests() => torch.set_num_threads(1);

    private static readonly long[] PromptIds = { 0 };
    private const float Tol = 2e-5f;

    private static (float[] Scores, long Chosen, ContrastiveTraceEntry Trace) FirstStep(ContrastiveDecoderOptions options, long[]? prompt = null, long[]? prefix = null)
    {
        prompt ??= PromptIds;
        var context = prompt.Concat(prefix ?? Array.Empty<long>()).ToArray();
        using var aligned = Hand(AlignedP, context);
        using var baseModel = Hand(BaseP, context);
        using var decoder = new ContrastiveDecoder(aligned, baseModel, options with { Trace = true });
        var forcer = new RecordingForcer();
        var request = new GenerationRequest(prompt) { ForcedPrefixIds = prefix ?? Array.Empty<long>() };
        var result = decoder.Generate(new[] { request }, new GenerationOptions { MaxNewTokens = 1, TokenForcer = forcer }).Single();
        aligned.ForwardCallCount.Should().Be(1, "the prefill is one forward pass of the aligned model");
        baseModel.ForwardCallCount.Should().Be(1, "and one of the base model");
        return (forcer.Seen.Single().Scores, result.GeneratedIds.Single(), decoder.LastTrace!.Single().Single());
    }

    private static void ShouldMatch(float[] actual, params double[] expected)
    {
        actual.Should().HaveCount(expected.Length);
        for (int v = 0; v < expected.Length; v++)
        {
            if (double.IsNegativeInfinity(expected[v])) actual[v].Should().Be(float.NegativeInfinity, $"token {v} lies outside P_j");
            else actual[v].Should().BeApproximately((float)expected[v], Tol, $"token {v}");
        }
    }

    [Fact]
    public void Full_rule_with_constant_alpha_and_the_plausibility_cut()
    {
        // alpha = 1: s = 2 l_a - l_b. beta_cd = 0.1: P = { p_a >= 0.05 } = {0, 1, 2, 3}.
        // s0 = ln(0.25 / 0.2) = 0.223144, s1 = ln(0.09 / 0.5) = -1.714798, s2 = ln(0.0081 / 0.25) = -3.429597,
        // s3 = ln(0.0064 / 0.0497) = -2.049707, s4 = -inf (p_a = 0.03 < 0.05).
        var (scores, chosen, trace) = FirstStep(new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(1.0), PlausibilityBeta = 0.1 });
        ShouldMatch(scores, 0.223144, -1.714798, -3.429597, -2.049707, double.NegativeInfinity);
        chosen.Should().Be(0);
        trace.Alpha.Should().BeApproximately(1.0, 1e-6);
        trace.PlausibleCount.Should().Be(4);
    }

    [Fact]
    public void Without_the_cut_the_full_rule_promotes_a_token_both_models_find_implausible()
    {
        // beta_cd = 0: s4 = ln(0.0009 / 0.0003) = ln 3 = 1.098612 beats s0, so greedy picks token 4: the cut matters.
        var (scores, chosen, trace) = FirstStep(new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(1.0), PlausibilityBeta = 0 });
        ShouldMatch(scores, 0.223144, -1.714798, -3.429597, -2.049707, 1.098612);
        chosen.Should().Be(4);
        trace.PlausibleCount.Should().Be(5);
    }

    [Fact]
    public void Base_favored_only_rule_demotes_only_tokens_the_base_prefers()
    {
        // alpha = 2: s = l_a - 2 max(0, l_b - l_a). Base-favored: 1 (ln(0.5/0.3) = 0.510826) and 2 (ln(0.25/0.09) = 1.021651).
        // s0 = ln 0.5 = -0.693147, s1 = ln 0.3 - 1.021651 = -2.225624, s2 = ln 0.09 - 2.043302 = -4.451248,
        // s3 = ln 0.08 = -2.525729 (base prefers it less), s4 = -inf (cut).
        var (scores, chosen, _) = FirstStep(new ContrastiveDecoderOptions { Rule = ContrastiveRule.BaseFavoredOnly, Alpha = new ConstantAlpha(2.0) });
        ShouldMatch(scores, -0.693147, -2.225624, -4.451248, -2.525729, double.NegativeInfinity);
        chosen.Should().Be(0);
    }

    [Fact]
    public void Incompleteness_driven_alpha_uses_this_steps_U()
    {
        // kB = 50 (clipped to V = 5), tau = 0: B = {1, 2} (l_b > l_a), m_b = 0.75, m_a = 0.39, p_b(T) = 1,
        // U = 1 - (0.75 - 0.39) / 1 = 0.64, alpha = 2.0 * 0.64 = 1.28; full rule s = l_a + 1.28 (l_a - l_b):
        // s0 = ln0.5 + 1.28 ln2.5 = 0.479705, s1 = -1.857830, s2 = -3.715659, s3 = -1.916421, s4 = -inf.
        var (scores, chosen, trace) = FirstStep(new ContrastiveDecoderOptions { Alpha = new IncompletenessDrivenAlpha(2.0) });
        ShouldMatch(scores, 0.479705, -1.857830, -3.715659, -1.916421, double.NegativeInfinity);
        chosen.Should().Be(0);
        trace.Incompleteness.Should().BeApproximately(0.64, 1e-5);
        trace.Alpha.Should().BeApproximately(1.28, 1e-5);

        // kB = 2: T = {1, 2}, B = {1, 2}, p_b(T) = 0.75: U = 1 - 0.36 / 0.75 = 0.52, alpha = 1.04.
        var (_, _, traceK2) = FirstStep(new ContrastiveDecoderOptions
        {
            Alpha = new IncompletenessDrivenAlpha(2.0),
            Incompleteness = new IncompletenessOptions { TopKBase = 2 },
        });
        traceK2.Incompleteness.Should().BeApproximately(0.52, 1e-5);
        traceK2.Alpha.Should().BeApproximately(1.04, 1e-5);
    }

    [Fact]
    public void Ramp_alpha_counts_forced_prefix_tokens_in_the_response_position()
    {
        // Prompt [0], forced prefix [3, 3]: the first chosen token has j = 3. Ramp (0.5 -> 2.0 over 4 positions):
        // alpha_3 = 0.5 + 1.5 * min(1, 2 / 4) = 1.25. Full: s = l_a + 1.25 (l_a - l_b):
        // s0 = 0.452216, s1 = -1.842505, s2 = -3.685010, s3 = -1.930702, s4 = -inf.
        var options = new ContrastiveDecoderOptions { Alpha = new LinearRampAlpha(0.5, 2.0, 4) };
        var (scores, _, trace) = FirstStep(options, PromptIds, new long[] { 3, 3 });
        ShouldMatch(scores, 0.452216, -1.842505, -3.685010, -1.930702, double.NegativeInfinity);
        trace.ResponsePosition.Should().Be(3);
        trace.Alpha.Should().BeApproximately(1.25, 1e-6);

        // Same distributions as a prompt without prefix: j = 1, alpha = 0.5.
        // Base-favored only: s1 = ln0.3 - 0.5 * 0.510826 = -1.459386, s2 = ln0.09 - 0.5 * 1.021651 = -2.918771.
        var (early, _, earlyTrace) = FirstStep(options with { Rule = ContrastiveRule.BaseFavoredOnly }, new long[] { 0, 3, 3 });
        earlyTrace.ResponsePosition.Should().Be(1);
        earlyTrace.Alpha.Should().BeApproximately(0.5, 1e-6);
        ShouldMatch(early, -0.693147, -1.459386, -2.918771, -2.525729, double.NegativeInfinity);
    }

    [Fact]
    public void Trace_reports_KL_and_the_chosen_tokens_probabilities()
    {
        // Full, alpha = 1, beta_cd = 0.1, token 0 chosen.
        // KL(a||b) = sum p_a ln(p_a / p_b) = 0.5 ln2.5 + 0.3 ln0.6 + 0.09 ln0.36 + 0.08 ln(0.08/0.0497) + 0.03 ln100 = 0.389186.
        // Contrastive distribution over P: exp(s) = (1.25, 0.18, 0.0324, 0.128773) / 1.591173, so p_c(0) = 0.785584.
        var (_, chosen, trace) = FirstStep(new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(1.0) });
        chosen.Should().Be(0);
        trace.TokenId.Should().Be(0);
        trace.Step.Should().Be(0);
        trace.Row.Should().Be(0);
        trace.KlAlignedBase.Should().BeApproximately(0.389186, 2e-5);
        trace.AlignedProbability.Should().BeApproximately(0.5, 1e-6);
        trace.BaseProbability.Should().BeApproximately(0.2, 1e-6);
        trace.ContrastiveProbability.Should().BeApproximately(0.785584, 2e-5);
        trace.ProbabilityShift.Should().BeApproximately(0.285584, 2e-5);
        // U with kB = 50 (see the incompleteness test) is reported even for a constant schedule.
        trace.Incompleteness.Should().BeApproximately(0.64, 1e-5);
    }

    [Fact]
    public void Scores_equal_ContrastiveScoring_on_the_same_log_probabilities_for_every_rule_and_schedule()
    {
        // A second, independent path: the library function on l_a, l_b written from the same probabilities.
        using var la = torch.tensor(AlignedP.Select(p => (float)Math.Log(p)).ToArray(), new long[] { 1, 5 });
        using var lb = torch.tensor(BaseP.Select(p => (float)Math.Log(p)).ToArray(), new long[] { 1, 5 });
        using var pos = torch.tensor(new long[] { 1 });
        foreach (var rule in new[] { ContrastiveRule.Full, ContrastiveRule.BaseFavoredOnly })
        foreach (IAlphaSchedule schedule in new IAlphaSchedule[] { new ConstantAlpha(0.7), new LinearRampAlpha(), new IncompletenessDrivenAlpha(1.5) })
        foreach (var beta in new[] { 0.0, 0.1, 0.5 })
        {
            var options = new ContrastiveDecoderOptions { Rule = rule, Alpha = schedule, PlausibilityBeta = beta };
            var (scores, _, _) = FirstStep(options);
            using var step = ContrastiveScoring.Step(la, lb, pos, options.ToScoringOptions());
            var expected = step.Scores.data<float>().Select(x => (double)x).ToArray();
            ShouldMatch(scores, expected);
        }
    }
}
