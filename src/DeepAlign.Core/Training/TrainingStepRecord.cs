namespace DeepAlign.Training;

/// <summary>One optimiser step in <see cref="TrainingResult.History"/>.</summary>
/// <param name="Step">Steps completed (1-based).</param>
/// <param name="Loss">Token-weighted loss of the step.</param>
/// <param name="Terms">Named terms.</param>
/// <param name="LearningRate">Learning rate used.</param>
/// <param name="GradientNorm">Gradient norm before clipping.</param>
/// <param name="Tokens">Real tokens processed.</param>
/// <param name="TargetTokens">Target tokens in the step.</param>
public sealed record TrainingStepRecord(long Step, double Loss, IReadOnlyDictionary<string, double> Terms, double LearningRate, double GradientNorm, long Tokens, long TargetTokens);
