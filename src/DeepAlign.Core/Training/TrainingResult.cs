namespace DeepAlign.Training;

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
