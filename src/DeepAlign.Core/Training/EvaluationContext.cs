namespace DeepAlign.Training;

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
