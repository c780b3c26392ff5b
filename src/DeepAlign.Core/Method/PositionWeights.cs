using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// Position weights w_j of the base-favored penalty (docs/method.md section 3), which counter the decay of the gradient
/// signal with the response position: from the gradient signal probe's norms n_j, or a ramp without a probe.
/// </summary>
public static class PositionWeights
{
    /// <summary>
    /// Weight table w_j = min(w_max, (n_1 / n_j)^rho) for j = 1..J from the probe's mean gradient norms n_1..n_J.
    /// A non-positive n_j (no signal at all) gets w_max.
    /// </summary>
    /// <param name="probeNorms">n_1..n_J (index 0 is position 1); n_1 must be positive and finite.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <returns>w_1..w_J.</returns>
    /// <exception cref="ArgumentException">The list is empty or n_1 is not positive and finite.</exception>
    public static double[] TableFromProbe(IReadOnlyList<double> probeNorms, PositionWeightOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(probeNorms);
        options = (options ?? new PositionWeightOptions()).Validate();
        if (probeNorms.Count == 0) throw new ArgumentException("probeNorms must hold at least n_1.", nameof(probeNorms));
        double n1 = probeNorms[0];
        if (!double.IsFinite(n1) || n1 <= 0) throw new ArgumentException($"probeNorms[0] (n_1) must be positive and finite (got {n1}).", nameof(probeNorms));
        var w = new double[probeNorms.Count];
        for (int j = 0; j < w.Length; j++)
        {
            double nj = probeNorms[j];
            if (double.IsNaN(nj)) throw new ArgumentException($"probeNorms[{j}] is NaN.", nameof(probeNorms));
            w[j] = nj <= 0 ? options.MaxWeight : Math.Min(options.MaxWeight, Math.Pow(n1 / nj, options.Rho));
        }
        return w;
    }

    /// <summary>
    /// w_j for each row's response position from the probe's norms (see <see cref="TableFromProbe"/>). Positions
    /// beyond the probe's length J take w_J (our choice).
    /// </summary>
    /// <param name="probeNorms">n_1..n_J.</param>
    /// <param name="positions">Response positions j (1-based), <c>[N]</c> int64.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <returns><c>[N]</c> float32 on the positions' device.</returns>
    public static Tensor FromProbe(IReadOnlyList<double> probeNorms, Tensor positions, PositionWeightOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(positions);
        var table = TableFromProbe(probeNorms, options);
        using var scope = NewDisposeScope();
        CheckPositions(positions);
        var t = tensor(table.Select(x => (float)x).ToArray(), ScalarType.Float32, positions.device);
        using var last = table.Length.ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
        var idx = positions.clamp(Scalars.One, last).sub(Scalars.One);
        return MetaFallback.IndexSelect(t, 0, idx.flatten()).reshape(positions.shape).MoveToOuterDisposeScope();
    }

    /// <summary>Fallback without a probe: w_j = min(w_max, 1 + (j - 1) / RampLength).</summary>
    /// <param name="positions">Response positions j (1-based), <c>[N]</c> int64.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <returns><c>[N]</c> float32 on the positions' device.</returns>
    public static Tensor Ramp(Tensor positions, PositionWeightOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(positions);
        options = (options ?? new PositionWeightOptions()).Validate();
        using var scope = NewDisposeScope();
        CheckPositions(positions);
        // 1.0 + (p - 1.0) / RampLength, capped at MaxWeight, with explicit Scalars (Runtime/Scalars.cs).
        using var rampLength = options.RampLength.ToScalar();
        using var maxWeight = options.MaxWeight.ToScalar();
        var w = positions.to_type(ScalarType.Float64).sub(Scalars.OneDouble).div(rampLength).add(Scalars.OneDouble, Scalars.One).clamp_max(maxWeight);
        return w.to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    internal static void CheckPositions(Tensor positions)
    {
        if (positions.dtype != ScalarType.Int64) throw new ArgumentException($"positions must be int64 (got {positions.dtype}).", nameof(positions));
        // On the meta device (shapes without values, the device tests) there is no value to check.
        if (positions.numel() > 0 && !MetaFallback.IsMeta(positions) && positions.min().item<long>() < 1)
            throw new ArgumentException("Response positions start at 1; got a smaller one.", nameof(positions));
    }
}
