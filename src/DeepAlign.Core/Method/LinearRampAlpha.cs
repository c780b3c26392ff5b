using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// Linear ramp over the response position: alpha_j = Alpha0 + (AlphaMax - Alpha0) * min(1, (j - 1) / RampLength)
/// (docs/method.md section 2): weak contrast on the first tokens, strong later where alignment is most incomplete.
/// </summary>
/// <param name="Alpha0">alpha at j = 1; default 0.5 (docs/method.md; our choice). Finite, &gt;= 0.</param>
/// <param name="AlphaMax">alpha from j = RampLength + 1 on; default 2.0 (docs/method.md; our choice). Finite, &gt;= 0.</param>
/// <param name="RampLength">T_ramp, positions over which alpha rises; default 32 (docs/method.md; our choice). &gt;= 1.</param>
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
