using DeepAlign.Method;
using FluentAssertions;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>The shared-difference KL used by <see cref="PositionStatistics.Compute"/> equals <see cref="PositionStatistics.KlDivergence"/>.</summary>
public class KlBothWaysTests
{
    [Fact]
    public void Equals_the_masked_form_bit_for_bit_and_falls_back_on_zero_probabilities()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var la = PositionStatistics.LogSoftmax(randn(6, 50) * 4);
        var lb = PositionStatistics.LogSoftmax(randn(6, 50) * 4);
        var (ab, ba) = PositionStatistics.KlBothWays(la, lb);
        ab.data<float>().ToArray().Should().Equal(PositionStatistics.KlDivergence(la, lb).data<float>().ToArray());
        ba.data<float>().ToArray().Should().Equal(PositionStatistics.KlDivergence(lb, la).data<float>().ToArray());

        // Zero-probability tokens: p_a = [0.5, 0.5, 0], p_b = [0.25, 0.25, 0.5] -> KL(a||b) = ln 2, KL(b||a) = inf.
        var za = tensor(new[] { MathF.Log(0.5f), MathF.Log(0.5f), float.NegativeInfinity }, [1, 3]);
        var zb = tensor(new[] { MathF.Log(0.25f), MathF.Log(0.25f), MathF.Log(0.5f) }, [1, 3]);
        var (zab, zba) = PositionStatistics.KlBothWays(za, zb);
        zab.item<float>().Should().BeApproximately(MathF.Log(2), 1e-6f);
        float.IsPositiveInfinity(zba.item<float>()).Should().BeTrue();
    }
}
