namespace DeepAlign.Training;

/// <summary>
/// A training loss, pluggable into <see cref="Trainer"/>. The trainer calls <see cref="CountTokens"/> on every
/// micro-batch of an optimiser step first (no forward pass), sums the counts per normalisation group, then calls
/// <see cref="Compute"/> on each micro-batch with those totals and back-propagates the returned loss.
/// </summary>
/// <remarks>
/// Token-weighted means (docs/method.md section 0): "mean over tokens" is the sum over every target token of the
/// accumulated batch divided by their count. An objective therefore returns, per micro-batch, its share
/// <c>sum over this micro-batch's tokens / total tokens of the accumulated batch</c> (see
/// <see cref="ObjectiveContext.Normalize"/>); the shares add up to the exact accumulated-batch mean, whatever the
/// split into micro-batches. Terms with different token sets (e.g. harmful targets and benign anchors) use
/// different normalisation groups. A group may count other units than tokens: <see cref="DpoObjective"/>'s counts
/// preference pairs (its loss is a mean over pairs).
/// </remarks>
public interface ITrainingObjective
{
    /// <summary>Short name used in logs and on the command line (e.g. <c>sft</c>).</summary>
    string Name { get; }

    /// <summary>Names of the frozen models this objective needs in <see cref="ObjectiveContext.Teachers"/> (e.g. <c>aligned</c>, <c>base</c>).</summary>
    IReadOnlyList<string> RequiredTeachers { get; }

    /// <summary>The denominators of this micro-batch: target-token counts per normalisation group, from masks only.</summary>
    /// <param name="batch">The micro-batch.</param>
    TokenCounts CountTokens(TrainingBatch batch);

    /// <summary>
    /// Computes this micro-batch's share of the loss. The returned <see cref="ObjectiveOutput.Loss"/> must be a
    /// scalar with a graph to the student's trainable parameters (the trainer calls <c>backward()</c> on it).
    /// </summary>
    /// <param name="batch">The micro-batch.</param>
    /// <param name="context">Models, accumulated-batch token totals, step and a deterministic random source.</param>
    ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context);
}
