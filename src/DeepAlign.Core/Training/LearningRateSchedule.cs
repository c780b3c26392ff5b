namespace DeepAlign.Training;

/// <summary>
/// The learning rate at each optimiser step: linear warmup, then cosine (or linear, or constant) decay to a floor.
/// </summary>
/// <remarks>
/// For step s (0-based) of N, peak lr, warmup W and floor ratio m:
/// s &lt; W: lr (s + 1) / W (so the first step already moves; unlike Hugging Face's s / W, no step is wasted at 0);
/// otherwise with progress p = (s - W) / max(1, N - W) in [0, 1):
/// cosine: lr (m + (1 - m) (1 + cos(pi p)) / 2); linear: lr (m + (1 - m)(1 - p)); constant: lr.
/// As in Hugging Face's decay, the floor m x lr is the value one step past the end, so no step runs at 0.
/// </remarks>
public static class LearningRateSchedule
{
    /// <summary>The learning rate of step <paramref name="step"/> (0-based).</summary>
    /// <param name="options">Peak rate, warmup, kind, floor and step count.</param>
    /// <param name="step">Optimiser step, 0-based.</param>
    public static double At(TrainerOptions options, long step)
    {
        double peak = options.LearningRate;
        int warmup = options.WarmupSteps;
        if (step < warmup) return peak * (step + 1) / warmup;
        double m = options.MinLearningRateRatio;
        double span = Math.Max(1, options.MaxSteps - warmup);
        double p = Math.Clamp((step - warmup) / span, 0.0, 1.0);
        return options.Schedule switch
        {
            LearningRateScheduleKind.Cosine => peak * (m + (1 - m) * 0.5 * (1 + Math.Cos(Math.PI * p))),
            LearningRateScheduleKind.Linear => peak * (m + (1 - m) * (1 - p)),
            _ => peak,
        };
    }
}
