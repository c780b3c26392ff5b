using DeepAlign.Evaluation;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Evaluation;

public class RateEstimateTests
{
    private const double Z2 = RateEstimate.Z95 * RateEstimate.Z95; // 3.841459...

    [Fact]
    public void Zero_of_ten_has_closed_form_upper_bound()
    {
        // With p = 0 the Wilson upper bound reduces to z^2 / (n + z^2) = 3.841459 / 13.841459.
        var r = RateEstimate.Wilson(0, 10);
        r.Rate.Should().Be(0);
        r.Low.Should().Be(0);
        r.High.Should().BeApproximately(Z2 / (10 + Z2), 1e-12);
        r.High.Should().BeApproximately(0.277533, 1e-6);
    }

    [Fact]
    public void Ten_of_ten_has_closed_form_lower_bound()
    {
        // With p = 1 the lower bound reduces to n / (n + z^2).
        var r = RateEstimate.Wilson(10, 10);
        r.Rate.Should().Be(1);
        r.Low.Should().BeApproximately(10 / (10 + Z2), 1e-12);
        r.Low.Should().BeApproximately(0.722467, 1e-6);
        r.High.Should().Be(1);
    }

    [Fact]
    public void Five_of_ten_matches_the_published_interval()
    {
        // statsmodels proportion_confint(5, 10, method="wilson") = (0.2365931, 0.7634069).
        var r = RateEstimate.Wilson(5, 10);
        r.Rate.Should().Be(0.5);
        r.Low.Should().BeApproximately(0.2365931, 1e-6);
        r.High.Should().BeApproximately(0.7634069, 1e-6);
        (r.Low + r.High).Should().BeApproximately(1.0, 1e-12); // symmetric around 1/2
    }

    [Fact]
    public void Asymmetric_case_is_not_centred_on_the_rate()
    {
        // 3/20 by hand: centre = (0.15 + z^2/40) / (1 + z^2/20) = 0.206394; half = z/(1+z^2/20) * sqrt(0.006375 + z^2/1600) = 0.154025.
        var r = RateEstimate.Wilson(3, 20);
        r.Low.Should().BeApproximately(0.052369, 1e-5);
        r.High.Should().BeApproximately(0.360419, 1e-5);
        (r.High - r.Rate).Should().BeGreaterThan(r.Rate - r.Low);
    }

    [Fact]
    public void Empty_sample_is_uninformative_and_bad_counts_throw()
    {
        RateEstimate.Wilson(0, 0).Should().Be(new RateEstimate(0, 0, 0, 0, 1));
        FluentActions.Invoking(() => RateEstimate.Wilson(11, 10)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("successes");
        FluentActions.Invoking(() => RateEstimate.Wilson(-1, 10)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("successes");
        FluentActions.Invoking(() => RateEstimate.Wilson(0, -1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("n");
    }

    [Fact]
    public void Formats_as_percent_with_interval_and_n()
    {
        RateEstimate.Wilson(5, 10).ToString().Should().Be("50.0% [23.7, 76.3] (n=10)");
    }
}
