namespace DeepAlign.Training;

/// <summary>One evaluation run.</summary>
/// <param name="Step">Steps completed when it ran.</param>
/// <param name="Metrics">What the evaluation callback returned.</param>
public sealed record TrainingEvaluation(long Step, IReadOnlyDictionary<string, double> Metrics);
