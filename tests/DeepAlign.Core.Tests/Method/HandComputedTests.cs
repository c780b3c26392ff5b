using DeepAlign.Method;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Method.Baselines;
using static DeepAlign.Tests.Method.MethodTestHelpers;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method;

/// <summary>
/// A 4-token case worked out by hand, asymmetric so that a swapped KL direction, swapped models or a sign error
/// fails:
///   p_a = [0.6, 0.1, 0.2, 0.1]   (aligned)
///   p_b = [0.3, 0.4, 0.1, 0.2]   (base)
/// l_b - l_a = [ln 0.5, ln 4, ln 0.5, ln 2] = [-0.693, 1.386, -0.693, 0.693].
/// </summary>
public class HandComputedTests
{
    private static readonly float[] Pa = [0.6f, 0.1f, 0.2f, 0.1f];
    private static readonly float[] Pb = [0.3f, 0.4f, 0.1f, 0.2f];
    private static readonly double Ln2 = Math.Log(2);

    // Logits = log p (plus a constant that log_softmax removes), so l = log p up to float32 rounding.
    private static Tensor Logits(float[] p, float shift) => tensor(p.Select(x => MathF.Log(x) + shift).ToArray(), [1, 4]);

    private static (Tensor La, Tensor Lb) Pair()
        => (PositionStatistics.LogSoftmax(Logits(Pa, 3f)), PositionStatistics.LogSoftmax(Logits(Pb, -1f)));

    [Fact]
    public void Kl_both_directions()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = Pair();
        // KL(a||b) = 0.6 ln(0.6/0.3) + 0.1 ln(0.1/0.4) + 0.2 ln(0.2/0.1) + 0.1 ln(0.1/0.2)
        //          = (0.6 - 0.2 + 0.2 - 0.1) ln 2 = 0.5 ln 2 = 0.3465736
        // KL(b||a) = 0.3 ln(0.3/0.6) + 0.4 ln(0.4/0.1) + 0.1 ln(0.1/0.2) + 0.2 ln(0.2/0.1)
        //          = (-0.3 + 0.8 - 0.1 + 0.2) ln 2 = 0.6 ln 2 = 0.4158883
        using var r = PositionStatistics.Compute(la, lb, options: new IncompletenessOptions { TopKBase = 3 });
        r.KlAlignedBase.item<float>().Should().BeApproximately((float)(0.5 * Ln2), 1e-6f);
        r.KlBaseAligned.item<float>().Should().BeApproximately((float)(0.6 * Ln2), 1e-6f);
    }

    [Fact]
    public void Base_favored_set_masses_and_incompleteness()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = Pair();
        // kB = 3: T = top-3 of p_b = {1 (0.4), 0 (0.3), 3 (0.2)}; p_b(T) = 0.9.
        // tau = 0: B = {1, 3} (ln 4 > 0, ln 2 > 0; token 0 has ln 0.5 < 0; token 2 is outside T).
        //   m_b = 0.4 + 0.2 = 0.6, m_a = 0.1 + 0.1 = 0.2, U = 1 - (0.6 - 0.2) / 0.9 = 5/9 = 0.5555556.
        // targets y = 1 -> r = ln 4 = 1.3862944 (base-favored); y = 0 -> r = ln 0.5 (not).
        var targets = tensor(new long[] { 1 });
        using var r = PositionStatistics.Compute(la, lb, targets, new IncompletenessOptions { TopKBase = 3, ReportTopItems = 2 });
        ToLongs(r.Set.TopIds).Should().Equal(1, 0, 3);
        ToBools(r.Set.Members).Should().Equal(true, false, true);
        ToBools(r.Set.ToDenseMask(4)).Should().Equal(false, true, false, true);
        r.Set.MassBase.item<float>().Should().BeApproximately(0.6f, 1e-6f);
        r.Set.MassAligned.item<float>().Should().BeApproximately(0.2f, 1e-6f);
        r.Set.TopMassBase.item<float>().Should().BeApproximately(0.9f, 1e-6f);
        r.Set.Incompleteness.item<float>().Should().BeApproximately(5f / 9f, 1e-6f);
        r.LogRatio!.item<float>().Should().BeApproximately((float)Math.Log(4), 1e-6f);
        r.BaseFavoredToken!.item<bool>().Should().BeTrue();
        // Top items by p_b: token 1 (p_b 0.4, p_a 0.1), then token 3 (0.2, 0.1).
        ToLongs(r.TopItemIds).Should().Equal(1, 3);
        AssertClose(r.TopItemProbBase, [0.4, 0.2], "top p_b", 1e-6);
        AssertClose(r.TopItemProbAligned, [0.1, 0.1], "top p_a", 1e-6);

        // tau = 1: only ln 4 = 1.386 > 1, so B = {1}; U = 1 - (0.4 - 0.1) / 0.9 = 2/3.
        using var r1 = PositionStatistics.Compute(la, lb, tensor(new long[] { 0 }), new IncompletenessOptions { TopKBase = 3, Tau = 1.0 });
        ToBools(r1.Set.Members).Should().Equal(true, false, false);
        r1.Set.Incompleteness.item<float>().Should().BeApproximately(2f / 3f, 1e-6f);
        r1.LogRatio!.item<float>().Should().BeApproximately((float)Math.Log(0.5), 1e-6f);
        r1.BaseFavoredToken!.item<bool>().Should().BeFalse();
        // Fewer members than report slots (M = min(5, kB = 3) = 3): unused slots are invalid, id -1, probabilities 0.
        ToLongs(r1.TopItemIds).Should().Equal(1, -1, -1);
        ToBools(r1.TopItemValid).Should().Equal(true, false, false);
        AssertClose(r1.TopItemProbBase, [0.4, 0, 0], "top p_b", 1e-6);
    }

    [Fact]
    public void Contrastive_scores_both_rules_and_the_cut()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = Pair();
        // full, alpha = 1: s = 2 l_a - l_b = ln(p_a^2 / p_b) = ln [0.36/0.3, 0.01/0.4, 0.04/0.1, 0.01/0.2]
        //                                                    = ln [1.2, 0.025, 0.4, 0.05]
        var full = ContrastiveScoring.Scores(la, lb, 1.0, ContrastiveRule.Full, 0.0);
        AssertClose(full, [Math.Log(1.2), Math.Log(0.025), Math.Log(0.4), Math.Log(0.05)], "full", 1e-5);
        // base-favored only, alpha = 1: s = l_a - max(0, l_b - l_a) = ln [0.6, 0.1/4, 0.2, 0.1/2]
        var bfo = ContrastiveScoring.Scores(la, lb, 1.0, ContrastiveRule.BaseFavoredOnly, 0.0);
        AssertClose(bfo, [Math.Log(0.6), Math.Log(0.025), Math.Log(0.2), Math.Log(0.05)], "bfo", 1e-5);
        // alpha = 2 (full): s = 3 l_a - 2 l_b = ln [0.216/0.09, 0.001/0.16, 0.008/0.01, 0.001/0.04]
        var full2 = ContrastiveScoring.Scores(la, lb, 2.0, ContrastiveRule.Full, 0.0);
        AssertClose(full2, [Math.Log(2.4), Math.Log(0.00625), Math.Log(0.8), Math.Log(0.025)], "full alpha 2", 1e-5);
        // beta_cd = 0.2: P = { p_a >= 0.12 } = {0, 2}; tokens 1 and 3 get -inf.
        var cut = ContrastiveScoring.Scores(la, lb, 1.0, ContrastiveRule.Full, 0.2);
        AssertClose(cut, [Math.Log(1.2), double.NegativeInfinity, Math.Log(0.4), double.NegativeInfinity], "full, cut", 1e-5);
    }

    [Fact]
    public void Alpha_schedules()
    {
        using var scope = NewDisposeScope();
        var pos = tensor(new long[] { 1, 2, 17, 33, 100 });
        // ramp: 0.5 + 1.5 min(1, (j-1)/32) = [0.5, 0.546875, 1.25, 2.0, 2.0]
        AssertClose(new LinearRampAlpha().Compute(pos, null), [0.5, 0.546875, 1.25, 2.0, 2.0], "ramp", 1e-7);
        AssertClose(new ConstantAlpha(0.7).Compute(pos, null), [0.7, 0.7, 0.7, 0.7, 0.7], "constant", 1e-7);
        var u = tensor(new float[] { 1f, 0.5f, 0f, 0.25f, 0.75f });
        AssertClose(new IncompletenessDrivenAlpha().Compute(pos, u), [2.0, 1.0, 0.0, 0.5, 1.5], "U-driven", 1e-7);
        FluentActions.Invoking(() => new IncompletenessDrivenAlpha().Compute(pos, null)).Should().Throw<ArgumentNullException>();
    }

    private sealed class TenthOfPosition : IAlphaSchedule
    {
        public bool UsesIncompleteness => false;
        public Tensor Compute(Tensor positions, Tensor? incompleteness) => positions.to_type(ScalarType.Float32) / 10;
    }

    [Fact]
    public void A_user_schedule_plugs_into_a_step()
    {
        using var scope = NewDisposeScope();
        var (la1, lb1) = Pair();
        var la = la1.expand(3, 4).contiguous();
        var lb = lb1.expand(3, 4).contiguous();
        var options = new ContrastiveScoringOptions { Alpha = new TenthOfPosition(), PlausibilityBeta = 0 };
        using var step = ContrastiveScoring.Step(la, lb, tensor(new long[] { 5, 10, 20 }), options);
        step.Incompleteness.Should().BeNull("the schedule does not use U");
        AssertClose(step.Alpha, [0.5, 1.0, 2.0], "alpha", 1e-7);
        // Row 2 (alpha 1) and row 3 (alpha 2) equal the hand-computed full scores above.
        AssertClose(step.Scores[1], [Math.Log(1.2), Math.Log(0.025), Math.Log(0.4), Math.Log(0.05)], "alpha 1 row", 1e-5);
        AssertClose(step.Scores[2], [Math.Log(2.4), Math.Log(0.00625), Math.Log(0.8), Math.Log(0.025)], "alpha 2 row", 1e-5);
    }

    [Fact]
    public void Hybrid_teacher_distillation_and_penalty()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = Pair();
        var opts = new HybridTeacherOptions { PlausibilityBeta = 0.2 };
        using var set = PositionStatistics.BaseFavored(la, lb, 0.0, 3);
        // g = g_max U = 0.5 * 5/9 = 0.2777778. softmax of the cut full scores over P = {0, 2}: [1.2, 0.4]/1.6 = [0.75, 0.25].
        // q = (1 - g) p_a + g [0.75, 0, 0.25, 0] = [0.6416667, 0.0722222, 0.2138889, 0.0722222].
        var g = TargetedCompletionTerms.MixWeights(set.Incompleteness, opts);
        g.item<float>().Should().BeApproximately(0.2777778f, 1e-6f);
        var q = TargetedCompletionTerms.HybridTeacher(la, lb, g, opts);
        double[] qHand = [0.6416667, 0.0722222, 0.2138889, 0.0722222];
        AssertClose(q, qHand, "q", 1e-6);

        // Student = aligned model: KL(q || p_a) = sum q ln(q / p_a) = 0.0104359.
        var student = la.detach().clone().requires_grad_(true);
        var kd = TargetedCompletionTerms.DistillationKl(q, student);
        kd.item<float>().Should().BeApproximately(0.0104359f, 1e-6f);

        // c on B = {1, 3}: c(1) = 1 - 0.1/0.4 = 0.75, c(3) = 1 - 0.1/0.2 = 0.5; token 0 is in T but not in B -> 0.
        AssertClose(TargetedCompletionTerms.PenaltyCosts(set), [0.75, 0.0, 0.5], "c", 1e-6);
        // w at j = 33 from the ramp: min(4, 1 + 32/32) = 2. Pen = 2 (0.1 * 0.75 + 0.1 * 0.5) = 0.25.
        var w = PositionWeights.Ramp(tensor(new long[] { 33 }));
        w.item<float>().Should().Be(2f);
        var logits = Logits(Pa, 0.5f).requires_grad_(true);
        var pen = TargetedCompletionTerms.Penalty(PositionStatistics.LogSoftmax(logits), set, w);
        pen.item<float>().Should().BeApproximately(0.25f, 1e-6f);
        // d Pen / d z_k = w p(k) (c(k) [k in B] - S), S = 0.125:
        //   2 * [0.6 (0 - 0.125), 0.1 (0.75 - 0.125), 0.2 (0 - 0.125), 0.1 (0.5 - 0.125)] = [-0.15, 0.125, -0.05, 0.075]
        pen.sum().backward();
        AssertClose(logits.grad!, [-0.15, 0.125, -0.05, 0.075], "dPen/dz", 1e-6);
    }

    [Fact]
    public void Constrained_objective_value_and_gradient()
    {
        using var scope = NewDisposeScope();
        // j = 1 -> beta 0.5; log pi_ref(y) = ln 0.1, log pi_theta(y) = ln 0.2:
        // loss = (2/0.5) softplus(0.5 (ln 0.1 - ln 0.2)) = 4 ln(1 + 2^-0.5) = 2.1392000
        // d loss / d log pi_theta = -2 sigmoid(-0.5 ln 2) = -2 / (1 + sqrt 2) = -0.8284271
        var betas = new ConstrainedBetaSchedule().Betas(tensor(new long[] { 1 }));
        var logp = tensor(new[] { MathF.Log(0.2f) }).requires_grad_(true);
        var loss = ConstrainedLoss.Loss(logp, tensor(new[] { MathF.Log(0.1f) }), betas);
        loss.item<float>().Should().BeApproximately(2.1392000f, 1e-6f);
        loss.sum().backward();
        logp.grad!.item<float>().Should().BeApproximately(-0.8284271f, 1e-6f);
        // Schedule: 0.5 at j = 1, 2.0 at 2..5, 0.1 after.
        AssertClose(new ConstrainedBetaSchedule().Betas(tensor(new long[] { 1, 2, 5, 6, 1000 })), [0.5, 2.0, 2.0, 0.1, 0.1], "betas", 1e-7);
    }

    [Fact]
    public void Probe_weights()
    {
        // n = [4, 1, 0.25, 0]: (4/n)^0.5 = [1, 2, 4, inf] capped at 4 -> [1, 2, 4, 4]; positions past J reuse w_J.
        PositionWeights.TableFromProbe([4, 1, 0.25, 0]).Should().Equal(1, 2, 4, 4);
        using var w = PositionWeights.FromProbe([4, 1, 0.25, 16], tensor(new long[] { 1, 2, 3, 4, 9 }));
        AssertClose(w, [1, 2, 4, 0.5, 0.5], "w", 1e-7);
        FluentActions.Invoking(() => PositionWeights.TableFromProbe([0, 1])).Should().Throw<ArgumentException>().WithMessage("*n_1*");
    }
}
