namespace DeepAlign.Method;

/// <summary>Options of the penalty's position weights w_j (docs/method.md section 3).</summary>
public sealed record PositionWeightOptions
{
    /// <summary>Exponent rho of w_j = min(w_max, (n_1 / n_j)^rho); default 0.5 (docs/method.md; our choice). Finite, &gt;= 0.</summary>
    public double Rho { get; init; } = 0.5;

    /// <summary>w_max, the cap of every weight; default 4 (docs/method.md; our choice). Finite, &gt;= 1.</summary>
    public double MaxWeight { get; init; } = 4.0;

    /// <summary>Slope length of the fallback ramp w_j = min(w_max, 1 + (j - 1) / RampLength); default 32 (docs/method.md; our choice). &gt;= 1.</summary>
    public int RampLength { get; init; } = 32;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public PositionWeightOptions Validate()
    {
        if (!double.IsFinite(Rho) || Rho < 0) throw new ArgumentException($"PositionWeightOptions.Rho must be finite and >= 0 (got {Rho}).", nameof(Rho));
        if (!double.IsFinite(MaxWeight) || MaxWeight < 1) throw new ArgumentException($"PositionWeightOptions.MaxWeight must be finite and >= 1 (got {MaxWeight}).", nameof(MaxWeight));
        if (RampLength < 1) throw new ArgumentException($"PositionWeightOptions.RampLength must be >= 1 (got {RampLength}).", nameof(RampLength));
        return this;
    }
}
