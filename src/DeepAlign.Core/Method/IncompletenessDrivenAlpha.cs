using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// Incompleteness-driven strength alpha_j = AlphaMax * U_j, with U_j computed from this step's two distributions
/// (no look-ahead; docs/method.md section 2): contrast where the aligned model left the base's preferences in place.
/// </summary>
/// <param name="AlphaMax">alpha at U_j = 1; default 2.0 (docs/method.md; our choice). Finite, &gt;= 0.</param>
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
