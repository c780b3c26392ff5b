using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method.Baselines;

/// <summary>
/// Per-position beta schedule of Qi et al.'s token-wise constrained objective: beta_1 = FirstBeta,
/// beta_2..EarlyLastPosition = EarlyBeta, later positions LateBeta.
/// </summary>
public sealed record ConstrainedBetaSchedule
{
    /// <summary>beta at response position 1; default 0.5 (Qi et al. 2025).</summary>
    public double FirstBeta { get; init; } = 0.5;

    /// <summary>beta at positions 2..<see cref="EarlyLastPosition"/>; default 2.0 (Qi et al. 2025).</summary>
    public double EarlyBeta { get; init; } = 2.0;

    /// <summary>Last position that uses <see cref="EarlyBeta"/>; default 5 (Qi et al. 2025). &gt;= 1 (1: no early band).</summary>
    public int EarlyLastPosition { get; init; } = 5;

    /// <summary>beta after <see cref="EarlyLastPosition"/>; default 0.1 (Qi et al. 2025).</summary>
    public double LateBeta { get; init; } = 0.1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field (every beta must be finite and &gt; 0).</summary>
    /// <returns>This instance.</returns>
    public ConstrainedBetaSchedule Validate()
    {
        Check(FirstBeta, nameof(FirstBeta));
        Check(EarlyBeta, nameof(EarlyBeta));
        Check(LateBeta, nameof(LateBeta));
        if (EarlyLastPosition < 1) throw new ArgumentException($"ConstrainedBetaSchedule.EarlyLastPosition must be >= 1 (got {EarlyLastPosition}).", nameof(EarlyLastPosition));
        return this;

        static void Check(double v, string name)
        {
            if (!double.IsFinite(v) || v <= 0) throw new ArgumentException($"ConstrainedBetaSchedule.{name} must be finite and > 0 (got {v}).", name);
        }
    }

    /// <summary>beta_j for each row's response position.</summary>
    /// <param name="positions">Response positions j (1-based), <c>[N]</c> int64.</param>
    /// <returns><c>[N]</c> float32 on the positions' device.</returns>
    public Tensor Betas(Tensor positions)
    {
        ArgumentNullException.ThrowIfNull(positions);
        Validate();
        using var scope = NewDisposeScope();
        PositionWeights.CheckPositions(positions);
        // Explicit Scalars only (Runtime/Scalars.cs).
        using var lateBeta = LateBeta.ToScalar();
        using var earlyBeta = EarlyBeta.ToScalar();
        using var firstBeta = FirstBeta.ToScalar();
        using var earlyLast = EarlyLastPosition.ToScalar();
        var late = full(positions.shape, lateBeta, ScalarType.Float32, positions.device);
        var early = full(positions.shape, earlyBeta, ScalarType.Float32, positions.device);
        var first = full(positions.shape, firstBeta, ScalarType.Float32, positions.device);
        var b = where(positions.le(earlyLast), early, late);
        b = where(positions.eq(Scalars.One), first, b);
        return b.MoveToOuterDisposeScope();
    }
}
