using DeepAlign.Method;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Method.Baselines;
using static DeepAlign.Tests.Method.MethodTestHelpers;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method;

/// <summary>Properties every correct implementation has, checked on random logits.</summary>
public class InvariantTests
{
    /// <summary>Same shape and the same float32 bit patterns everywhere.</summary>
    private static bool BitEqual(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        if (a.dtype == ScalarType.Bool) return a.cpu().data<bool>().ToArray().SequenceEqual(b.cpu().data<bool>().ToArray());
        var x = a.detach().cpu().contiguous().data<float>().ToArray();
        var y = b.detach().cpu().contiguous().data<float>().ToArray();
        return x.Select(BitConverter.SingleToInt32Bits).SequenceEqual(y.Select(BitConverter.SingleToInt32Bits));
    }

    private static (Tensor La, Tensor Lb) RandomPair(int n, int v, int seed, double spread = 1.0)
    {
        var gen = new Generator((ulong)seed);
        var b = randn([n, v], generator: gen) * 3.0;
        var a = b + randn([n, v], generator: gen) * spread;
        return (PositionStatistics.LogSoftmax(a), PositionStatistics.LogSoftmax(b));
    }

    [Fact]
    public void Identical_models_give_zero_kl_unit_u_and_no_base_favored_token()
    {
        using var scope = NewDisposeScope();
        var (la, _) = RandomPair(32, 500, 1);
        var lb = la.clone();
        var targets = randint(0, 500, [32], dtype: ScalarType.Int64);
        using var r = PositionStatistics.Compute(la, lb, targets);
        ToDoubles(r.KlAlignedBase).Should().OnlyContain(x => x == 0.0);
        ToDoubles(r.KlBaseAligned).Should().OnlyContain(x => x == 0.0);
        ToDoubles(r.Set.Incompleteness).Should().OnlyContain(x => x == 1.0);
        ToBools(r.Set.Members).Should().OnlyContain(x => !x);
        ToBools(r.BaseFavoredToken!).Should().OnlyContain(x => !x);
        ToDoubles(r.LogRatio!).Should().OnlyContain(x => x == 0.0);
        ToBools(r.TopItemValid).Should().OnlyContain(x => !x);
    }

    [Fact]
    public void Kl_is_nonnegative_u_in_unit_interval_costs_in_open_unit_interval()
    {
        using var scope = NewDisposeScope();
        foreach (var (spread, tau) in new[] { (0.3, 0.0), (2.0, 0.0), (2.0, 0.5) })
        {
            var (la, lb) = RandomPair(64, 300, 7, spread);
            using var r = PositionStatistics.Compute(la, lb, options: new IncompletenessOptions { Tau = tau });
            ToDoubles(r.KlAlignedBase).Should().OnlyContain(x => x >= 0);
            ToDoubles(r.KlBaseAligned).Should().OnlyContain(x => x >= 0);
            ToDoubles(r.Set.Incompleteness).Should().OnlyContain(x => x >= 0 && x <= 1);
            var c = ToDoubles(TargetedCompletionTerms.PenaltyCosts(r.Set));
            var m = ToBools(r.Set.Members);
            m.Should().Contain(true, "random pairs have base-favored tokens");
            for (int i = 0; i < c.Length; i++)
                if (m[i]) c[i].Should().BeInRange(double.Epsilon, 1 - 1e-12);
                else c[i].Should().Be(0);
            // m_a < m_b wherever B_j is non-empty.
            var mb = ToDoubles(r.Set.MassBase); var ma = ToDoubles(r.Set.MassAligned);
            for (int i = 0; i < mb.Length; i++) if (mb[i] > 0) ma[i].Should().BeLessThan(mb[i]);
        }
    }

    [Fact]
    public void Alpha_zero_and_beta_zero_return_aligned_log_probs_bit_for_bit()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = RandomPair(16, 257, 3, 2.0);
        // A base model that puts -inf on a token must not produce NaN at alpha = 0.
        lb[0, 5] = float.NegativeInfinity;
        foreach (var rule in new[] { ContrastiveRule.Full, ContrastiveRule.BaseFavoredOnly })
        {
            BitEqual(ContrastiveScoring.Scores(la, lb, 0.0, rule, 0.0), la).Should().BeTrue($"{rule}, scalar alpha");
            BitEqual(ContrastiveScoring.Scores(la, lb, zeros(16), rule, 0.0), la).Should().BeTrue($"{rule}, per-row alpha");
            var options = new ContrastiveScoringOptions { Rule = rule, PlausibilityBeta = 0, Alpha = new ConstantAlpha(0) };
            using var step = ContrastiveScoring.Step(la, lb, arange(1, 17, dtype: ScalarType.Int64), options);
            BitEqual(step.Scores, la).Should().BeTrue($"{rule}, step");
            // Mixed rows: only the alpha = 0 rows equal l_a.
            var alpha = tensor(Enumerable.Range(0, 16).Select(i => i % 2 == 0 ? 0f : 1.5f).ToArray());
            var s = ContrastiveScoring.Scores(la, lb, alpha, rule, 0.0);
            for (int i = 0; i < 16; i++)
                BitEqual(s[i], la[i]).Should().Be(i % 2 == 0, $"{rule} row {i}");
        }
    }

    [Fact]
    public void Plausibility_cut_keeps_the_argmax_and_only_plausible_tokens()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = RandomPair(16, 100, 11, 1.0);
        var s = ContrastiveScoring.Scores(la, lb, 1.0, ContrastiveRule.Full, 0.1);
        var inside = isfinite(s);
        var pa = la.exp();
        var expected = pa.ge(pa.amax([-1], keepdim: true) * 0.1);
        BitEqual(inside, expected).Should().BeTrue();
        inside.gather(-1, la.argmax(-1, keepdim: true)).all().item<bool>().Should().BeTrue();
    }

    [Fact]
    public void Hybrid_teacher_at_g_zero_is_p_a_and_at_u_one_is_the_stated_mixture()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = RandomPair(8, 64, 5, 1.5);
        var opts = new HybridTeacherOptions();
        var q0 = TargetedCompletionTerms.HybridTeacher(la, lb, zeros(8), opts);
        BitEqual(q0, la.exp()).Should().BeTrue("g = 0 must give p_a exactly");
        var g = TargetedCompletionTerms.MixWeights(ones(8), opts);
        ToDoubles(g).Should().OnlyContain(x => x == 0.5);
        var q1 = TargetedCompletionTerms.HybridTeacher(la, lb, g, opts);
        var sm = ContrastiveScoring.Scores(la, lb, 1.0, ContrastiveRule.Full, 0.1).softmax(-1);
        var expected = 0.5 * la.exp() + 0.5 * sm;
        AssertClose(q1, ToDoubles(expected), "q at U = 1", 1e-7);
        AssertClose(q1.sum(-1), Enumerable.Repeat(1.0, 8).ToArray(), "rows sum to 1", 1e-5);
        // Constant g ignores U.
        var gc = TargetedCompletionTerms.MixWeights(zeros(8), opts with { ConstantMix = 0.3 });
        ToDoubles(gc).Should().OnlyContain(x => Math.Abs(x - 0.3) < 1e-7);
    }

    [Fact]
    public void Constrained_gradient_is_minus_two_sigmoid_times_grad_log_pi()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(21);
        var logits = (randn([10, 30], generator: gen) * 2).requires_grad_(true);
        var targets = randint(0, 30, [10], generator: gen, dtype: ScalarType.Int64);
        var refLp = PositionStatistics.TokenLogProbs(PositionStatistics.LogSoftmax(randn([10, 30], generator: gen)), targets);
        var positions = arange(1, 11, dtype: ScalarType.Int64);
        var betas = new ConstrainedBetaSchedule().Betas(positions);
        var lt = PositionStatistics.LogSoftmax(logits);
        var logp = PositionStatistics.TokenLogProbs(lt, targets);
        ConstrainedLoss.Loss(logp, refLp, betas).sum().backward();
        var viaLoss = logits.grad!.clone();
        logits.grad!.zero_();
        // Expected: -2 sigmoid(beta (ref - logp)) * grad logp.
        var weight = (-2.0 * (betas * (refLp - logp.detach())).sigmoid()).detach();
        var logits2 = logits.detach().clone().requires_grad_(true);
        var logp2 = PositionStatistics.TokenLogProbs(PositionStatistics.LogSoftmax(logits2), targets);
        (weight * logp2).sum().backward();
        AssertClose(viaLoss, ToDoubles(logits2.grad!), "constrained gradient", 1e-6);
    }

    [Fact]
    public void Batched_equals_one_row_at_a_time_and_leading_shapes_work()
    {
        using var scope = NewDisposeScope();
        var (la, lb) = RandomPair(6, 80, 13, 1.0);
        using var all = PositionStatistics.Compute(la, lb);
        for (int i = 0; i < 6; i++)
        {
            using var one = PositionStatistics.Compute(la[i..(i + 1)], lb[i..(i + 1)]);
            AssertClose(one.KlAlignedBase, [ToDoubles(all.KlAlignedBase)[i]], $"KL row {i}", 1e-6);
            AssertClose(one.Set.Incompleteness, [ToDoubles(all.Set.Incompleteness)[i]], $"U row {i}", 1e-6);
        }
        // [B, T, V] gives the same per-position numbers as [B*T, V].
        using var three = PositionStatistics.Compute(la.reshape(2, 3, 80), lb.reshape(2, 3, 80));
        three.Set.Incompleteness.shape.Should().Equal([2, 3]);
        AssertClose(three.Set.Incompleteness.flatten(), ToDoubles(all.Set.Incompleteness), "U [B,T]", 1e-7);
        AssertClose(three.KlBaseAligned.flatten(), ToDoubles(all.KlBaseAligned), "KL [B,T]", 1e-7);
    }

    [Fact]
    public void Kl_gradient_has_no_nan_where_the_teacher_has_zero_probability()
    {
        using var scope = NewDisposeScope();
        var q = tensor(new float[] { 0.5f, 0.5f, 0f, 0f }, [1, 4]);
        var logits = tensor(new float[] { 1f, 0f, -1f, 2f }, [1, 4]).requires_grad_(true);
        var lt = PositionStatistics.LogSoftmax(logits);
        var kd = TargetedCompletionTerms.DistillationKl(q, lt);
        kd.sum().backward();
        var grad = ToDoubles(logits.grad!);
        grad.Should().OnlyContain(x => double.IsFinite(x));
        // Gradient w.r.t. logits is p_theta - q.
        AssertClose(grad, ToDoubles(lt.exp().detach() - q), "p - q", 1e-6);
        // A P with exact zeros (log P = -inf) gives a finite KL.
        var lp = tensor(new[] { MathF.Log(0.5f), MathF.Log(0.5f), float.NegativeInfinity, float.NegativeInfinity }, [1, 4]);
        float.IsFinite(PositionStatistics.KlDivergence(lp, lt.detach()).item<float>()).Should().BeTrue();
    }

    [Fact]
    public void Vocab_cut_drops_extra_logit_columns()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[] { 1f, 2f, 3f, 100f }, [1, 4]);
        var l = PositionStatistics.LogSoftmax(logits, 3);
        l.shape.Should().Equal([1, 3]);
        AssertClose(l.exp().sum(-1), [1.0], "sum", 1e-6);
        FluentActions.Invoking(() => PositionStatistics.LogSoftmax(logits, 5)).Should().Throw<ArgumentException>().WithMessage("*vocabSize*");
        FluentActions.Invoking(() => PositionStatistics.Compute(l, PositionStatistics.LogSoftmax(logits))).Should().Throw<ArgumentException>().WithMessage("*same shape*");
    }

    [Fact]
    public void Zero_probabilities_give_finite_contrast_and_never_NaN()
    {
        using var scope = NewDisposeScope();
        // p_a = [.5, .3, .2, 0], p_b = [.6, .4, 0, 0]: token 2 is impossible for the base, token 3 for both.
        var la = tensor(new[] { 0.5f, 0.3f, 0.2f, 0f }).log().unsqueeze(0);
        var lb = tensor(new[] { 0.6f, 0.4f, 0f, 0f }).log().unsqueeze(0);
        foreach (var rule in new[] { ContrastiveRule.Full, ContrastiveRule.BaseFavoredOnly })
        {
            var s = ContrastiveScoring.Scores(la, lb, 1.0, rule, plausibilityBeta: 0.0);
            var v = s[0].data<float>().ToArray();
            v.Take(3).Should().OnlyContain(x => float.IsFinite(x), $"{rule}: tokens the aligned model allows get finite scores");
            float.IsNegativeInfinity(v[3]).Should().BeTrue($"{rule}: a token the aligned model rules out stays at -inf");
            s.softmax(-1).isnan().any().item<bool>().Should().BeFalse();
        }
        // Full rule, alpha 1: s(2) = ln .2 + (ln .2 - floor) is the largest score: the base never says token 2.
        var full = ContrastiveScoring.Scores(la, lb, 1.0, ContrastiveRule.Full, 0.0)[0];
        full[2].item<float>().Should().BeApproximately((float)(2 * Math.Log(0.2) - ContrastiveScoring.LogProbabilityFloor), 1e-3f);
        full.argmax().item<long>().Should().Be(2);
        // Finite inputs above the floor are untouched: the formula is exact there.
        full[0].item<float>().Should().BeApproximately((float)(2 * Math.Log(0.5) - Math.Log(0.6)), 1e-5f);
    }
}
