using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// A schedule for the contrast strength alpha_j of contrastive decoding (METHOD.md section 2), evaluated per row
/// at each step. Implement it to supply your own schedule; the built-in ones are <see cref="ConstantAlpha"/>,
/// <see cref="LinearRampAlpha"/> and <see cref="IncompletenessDrivenAlpha"/>.
/// </summary>
public interface IAlphaSchedule
{
    /// <summary>
    /// Whether <see cref="Compute"/> reads the incompleteness score U_j. When false, callers may skip computing it
    /// and pass null.
    /// </summary>
    bool UsesIncompleteness { get; }

    /// <summary>alpha_j for each row.</summary>
    /// <param name="positions">Response position j of each row (1-based, counting forced tokens), <c>[N]</c> int64.</param>
    /// <param name="incompleteness">U_j of each row computed from this step's two distributions, <c>[N]</c> float32;
    /// may be null when <see cref="UsesIncompleteness"/> is false.</param>
    /// <returns>alpha_j, <c>[N]</c> float32 on the device of <paramref name="positions"/>.</returns>
    Tensor Compute(Tensor positions, Tensor? incompleteness);
}

/// <summary>Constant contrast strength alpha_j = <see cref="Alpha"/> (METHOD.md section 2).</summary>
/// <param name="Alpha">The constant; default 1.0 (METHOD.md; our choice, the paper's summary gives no value). Must be finite and &gt;= 0.</param>
public sealed record ConstantAlpha(double Alpha = 1.0) : IAlphaSchedule
{
    /// <inheritdoc/>
    public bool UsesIncompleteness => false;

    /// <summary>Throws <see cref="ArgumentException"/> naming a bad field.</summary>
    /// <returns>This instance.</returns>
    public ConstantAlpha Validate()
    {
        if (!double.IsFinite(Alpha) || Alpha < 0) throw new ArgumentException($"ConstantAlpha.Alpha must be finite and >= 0 (got {Alpha}).", nameof(Alpha));
        return this;
    }

    /// <inheritdoc/>
    public Tensor Compute(Tensor positions, Tensor? incompleteness)
    {
        using var alpha = Alpha.ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
        return full(positions.shape, alpha, ScalarType.Float32, positions.device);
    }
}

/// <summary>
/// Linear ramp over the response position: alpha_j = Alpha0 + (AlphaMax - Alpha0) * min(1, (j - 1) / RampLength)
/// (METHOD.md section 2): weak contrast on the first tokens, strong later where alignment is most incomplete.
/// </summary>
/// <param name="Alpha0">alpha at j = 1; default 0.5 (METHOD.md; our choice). Finite, &gt;= 0.</param>
/// <param name="AlphaMax">alpha from j = RampLength + 1 on; default 2.0 (METHOD.md; our choice). Finite, &gt;= 0.</param>
/// <param name="RampLength">T_ramp, positions over which alpha rises; default 32 (METHOD.md; our choice). &gt;= 1.</param>
public sealed record LinearRampAlpha(double Alpha0 = 0.5, double AlphaMax = 2.0, int RampLength = 32) : IAlphaSchedule
{
    /// <inheritdoc/>
    public bool UsesIncompleteness => false;

    /// <summary>Throws <see cref="ArgumentException"/> naming a bad field.</summary>
    /// <returns>This instance.</returns>
    public LinearRampAlpha Validate()
    {
        if (!double.IsFinite(Alpha0) || Alpha0 < 0) throw new ArgumentException($"LinearRampAlpha.Alpha0 must be finite and >= 0 (got {Alpha0}).", nameof(Alpha0));
        if (!double.IsFinite(AlphaMax) || AlphaMax < 0) throw new ArgumentException($"LinearRampAlpha.AlphaMax must be finite and >= 0 (got {AlphaMax}).", nameof(AlphaMax));
        if (RampLength < 1) throw new ArgumentException($"LinearRampAlpha.RampLength must be >= 1 (got {RampLength}).", nameof(RampLength));
        return this;
    }

    /// <inheritdoc/>
    public Tensor Compute(Tensor positions, Tensor? incompleteness)
    {
        using var scope = NewDisposeScope();
        // Explicit Scalars only (Runtime/Scalars.cs); same ops as Alpha0 + (AlphaMax - Alpha0) * clamp((p - 1.0) / RampLength, 0.0, 1.0).
        using var rampLength = RampLength.ToScalar();
        using var slope = (AlphaMax - Alpha0).ToScalar();
        using var alpha0 = Alpha0.ToScalar();
        var progress = positions.to_type(ScalarType.Float64).sub(Scalars.OneDouble).div(rampLength).clamp(Scalars.ZeroDouble, Scalars.OneDouble);
        return progress.mul(slope).add(alpha0, Scalars.One).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Incompleteness-driven strength alpha_j = AlphaMax * U_j, with U_j computed from this step's two distributions
/// (no look-ahead; METHOD.md section 2): contrast where the aligned model left the base's preferences in place.
/// </summary>
/// <param name="AlphaMax">alpha at U_j = 1; default 2.0 (METHOD.md; our choice). Finite, &gt;= 0.</param>
public sealed record IncompletenessDrivenAlpha(double AlphaMax = 2.0) : IAlphaSchedule
{
    /// <inheritdoc/>
    public bool UsesIncompleteness => true;

    /// <summary>Throws <see cref="ArgumentException"/> naming a bad field.</summary>
    /// <returns>This instance.</returns>
    public IncompletenessDrivenAlpha Validate()
    {
        if (!double.IsFinite(AlphaMax) || AlphaMax < 0) throw new ArgumentException($"IncompletenessDrivenAlpha.AlphaMax must be finite and >= 0 (got {AlphaMax}).", nameof(AlphaMax));
        return this;
    }

    /// <inheritdoc/>
    public Tensor Compute(Tensor positions, Tensor? incompleteness)
    {
        if (incompleteness is null)
            throw new ArgumentNullException(nameof(incompleteness), "IncompletenessDrivenAlpha needs U_j for every row.");
        using var scope = NewDisposeScope();
        var u = PositionStatistics.OnDevice(incompleteness, positions.device).to_type(ScalarType.Float32);
        using var alphaMax = AlphaMax.ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
        return u.mul(alphaMax).MoveToOuterDisposeScope();
    }
}
