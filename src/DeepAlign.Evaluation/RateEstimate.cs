namespace DeepAlign.Evaluation;

/// <summary>A proportion with its Wilson score interval (default 95%).</summary>
/// <param name="Successes">Number of successes.</param>
/// <param name="N">Number of trials.</param>
/// <param name="Rate">Successes / N (0 when N = 0).</param>
/// <param name="Low">Lower bound of the interval.</param>
/// <param name="High">Upper bound of the interval.</param>
public sealed record RateEstimate(int Successes, int N, double Rate, double Low, double High)
{
    /// <summary>z for a two-sided 95% interval (the 0.975 quantile of the standard normal).</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>
    /// Wilson score interval: centre (p + z^2/2n) / (1 + z^2/n), half-width
    /// z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2), clipped to [0, 1]. With n = 0 the rate is reported as 0 and the
    /// interval as the uninformative [0, 1].
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Counts are negative or successes exceed n.</exception>
    public static RateEstimate Wilson(int successes, int n, double z = Z95)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Number of trials must be non-negative.");
        if (successes < 0 || successes > n)
            throw new ArgumentOutOfRangeException(nameof(successes), successes, $"Successes must be in [0, {n}].");
        if (!(z > 0)) throw new ArgumentOutOfRangeException(nameof(z), z, "z must be positive.");
        if (n == 0) return new RateEstimate(0, 0, 0, 0, 1);
        double p = (double)successes / n;
        double z2 = z * z;
        double denom = 1 + z2 / n;
        double centre = (p + z2 / (2.0 * n)) / denom;
        double half = z / denom * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
        double low = successes == 0 ? 0 : Math.Max(0, centre - half);
        double high = successes == n ? 1 : Math.Min(1, centre + half);
        return new RateEstimate(successes, n, p, low, high);
    }

    /// <summary>Formats as <c>12.5% [8.1, 18.7] (n=320)</c>.</summary>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Rate * 100:0.0}% [{Low * 100:0.0}, {High * 100:0.0}] (n={N})");
}
