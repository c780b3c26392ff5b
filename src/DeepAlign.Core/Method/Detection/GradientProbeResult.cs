namespace DeepAlign.Method.Detection;

/// <summary>Result of <see cref="GradientSignalProbe.Run"/>.</summary>
/// <param name="Options">The options used.</param>
/// <param name="ParameterNames">The parameters the gradient was taken with respect to.</param>
/// <param name="Sequences">Sequences probed.</param>
/// <param name="ByPosition">One row per position 1..J (positions no sequence reached are left out).</param>
public sealed record GradientProbeResult(GradientProbeOptions Options, IReadOnlyList<string> ParameterNames, int Sequences, IReadOnlyList<GradientProbePosition> ByPosition)
{
    /// <summary>n_1..n_J, the input of <see cref="PositionWeights.TableFromProbe"/>.</summary>
    public IReadOnlyList<double> MeanNorms => ByPosition.Select(p => p.Norm.Mean).ToArray();
}
