namespace DeepAlign.Method.TargetedCompletion;

/// <summary>One learning rate tried for one objective.</summary>
/// <param name="LearningRate">The peak learning rate.</param>
/// <param name="ValidationLoss">The objective's own loss on the validation split.</param>
/// <param name="Metrics">The shared metrics on the validation split.</param>
/// <param name="FinalTrainingLoss">Loss of the last training step.</param>
public sealed record ComparisonCandidate(double LearningRate, double ValidationLoss, AlignmentMetricsResult Metrics, double FinalTrainingLoss);
