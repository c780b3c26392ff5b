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

/// <summary>One optimiser step in <see cref="TrainingResult.History"/>.</summary>
/// <param name="Step">Steps completed (1-based).</param>
/// <param name="Loss">Token-weighted loss of the step.</param>
/// <param name="Terms">Named terms.</param>
/// <param name="LearningRate">Learning rate used.</param>
/// <param name="GradientNorm">Gradient norm before clipping.</param>
/// <param name="Tokens">Real tokens processed.</param>
/// <param name="TargetTokens">Target tokens in the step.</param>
public sealed record TrainingStepRecord(long Step, double Loss, IReadOnlyDictionary<string, double> Terms, double LearningRate, double GradientNorm, long Tokens, long TargetTokens);

/// <summary>One evaluation run.</summary>
/// <param name="Step">Steps completed when it ran.</param>
/// <param name="Metrics">What the evaluation callback returned.</param>
public sealed record TrainingEvaluation(long Step, IReadOnlyDictionary<string, double> Metrics);

/// <summary>The outcome of <see cref="Trainer.Train"/>.</summary>
public sealed record TrainingResult
{
    /// <summary>Steps completed in total (including those before a resume).</summary>
    public required long Steps { get; init; }
    /// <summary>The step this run resumed from (0 for a fresh run).</summary>
    public required long ResumedFromStep { get; init; }
    /// <summary>Per-step records of this run (steps after the resume point).</summary>
    public required IReadOnlyList<TrainingStepRecord> History { get; init; }
    /// <summary>Evaluation runs of this run.</summary>
    public required IReadOnlyList<TrainingEvaluation> Evaluations { get; init; }
    /// <summary>The last checkpoint written, if checkpointing is on.</summary>
    public string? LastCheckpoint { get; init; }
    /// <summary>Average real tokens per second over this run.</summary>
    public required double TokensPerSecond { get; init; }
    /// <summary>Wall time of this run.</summary>
    public required TimeSpan Elapsed { get; init; }
}

/// <summary>Handed to the evaluation callback.</summary>
public sealed class EvaluationContext
{
    /// <summary>Steps completed.</summary>
    public required long Step { get; init; }
    /// <summary>The trainer (for <see cref="Trainer.EvaluateLoss"/>); the model is in evaluation mode during the callback.</summary>
    public required Trainer Trainer { get; init; }
    /// <summary>Cancellation of the run.</summary>
    public required CancellationToken CancellationToken { get; init; }
}

/// <summary>Training produced a non-finite loss or gradient; the message names the step. Weights were not updated by that step.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What diverged and at which step.</param>
    public TrainingDivergedException(string message) : base(message) { }
}
