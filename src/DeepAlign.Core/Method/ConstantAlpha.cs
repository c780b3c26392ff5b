using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>Constant contrast strength alpha_j = <see cref="Alpha"/> (docs/method.md section 2).</summary>
/// <param name="Alpha">The constant; default 1.0 (docs/method.md; our choice, the paper's summary gives no value). Must be finite and &gt;= 0.</param>
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
