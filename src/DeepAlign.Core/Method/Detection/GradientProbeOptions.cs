namespace DeepAlign.Method.Detection;

/// <summary>Options of the gradient signal probe (docs/method.md section 1).</summary>
public sealed record GradientProbeOptions
{
    /// <summary>J, the last response position probed. Default 64 (docs/method.md).</summary>
    public int MaxPositions { get; init; } = 64;

    /// <summary>N, how many of the last decoder layers' parameters are included (plus the output head). Default 3 (docs/method.md).</summary>
    public int LastLayers { get; init; } = 3;

    /// <summary>Largest number of sequences probed (the probe costs J backward passes per sequence). Default 64.</summary>
    public int MaxSequences { get; init; } = 64;

    /// <summary>Checks every field; throws an <see cref="ArgumentException"/> naming the first bad one.</summary>
    /// <returns>This instance.</returns>
    public GradientProbeOptions Validate()
    {
        if (MaxPositions < 1) throw new ArgumentException($"GradientProbeOptions.MaxPositions must be >= 1 (got {MaxPositions}).", nameof(MaxPositions));
        if (LastLayers < 0) throw new ArgumentException($"GradientProbeOptions.LastLayers must be >= 0 (got {LastLayers}).", nameof(LastLayers));
        if (MaxSequences < 1) throw new ArgumentException($"GradientProbeOptions.MaxSequences must be >= 1 (got {MaxSequences}).", nameof(MaxSequences));
        return this;
    }
}
