namespace DeepAlign.Training;

/// <summary>What <see cref="Trainer"/> reports after every optimiser step through <see cref="IProgress{T}"/>.</summary>
public sealed record TrainingProgress
{
    /// <summary>Steps completed (1-based: 1 after the first optimiser step).</summary>
    public required long Step { get; init; }
    /// <summary>Total steps of the run.</summary>
    public required long TotalSteps { get; init; }
    /// <summary>Loss of this step (token-weighted over the accumulated batch).</summary>
    public required double Loss { get; init; }
    /// <summary>The objective's named terms for this step.</summary>
    public required IReadOnlyDictionary<string, double> Terms { get; init; }
    /// <summary>Learning rate used by this step.</summary>
    public required double LearningRate { get; init; }
    /// <summary>Global gradient L2 norm before clipping.</summary>
    public required double GradientNorm { get; init; }
    /// <summary>Real (non-pad) tokens processed per second, averaged since the run (or resume) started.</summary>
    public required double TokensPerSecond { get; init; }
    /// <summary>Wall time since the run (or resume) started.</summary>
    public required TimeSpan Elapsed { get; init; }
    /// <summary>Estimated time to the last step, from the average step time so far.</summary>
    public required TimeSpan EstimatedRemaining { get; init; }
    /// <summary>Epochs completed over the first data source.</summary>
    public required double Epoch { get; init; }
    /// <summary>Metrics of the evaluation run after this step, if one ran.</summary>
    public IReadOnlyDictionary<string, double>? Evaluation { get; init; }
}
