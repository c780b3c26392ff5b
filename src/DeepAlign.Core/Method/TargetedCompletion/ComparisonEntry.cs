using DeepAlign.Models;
using DeepAlign.Training;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>One objective's outcome: its chosen learning rate and everything measured.</summary>
/// <param name="Objective">The objective.</param>
/// <param name="Best">The chosen candidate.</param>
/// <param name="Candidates">Every learning rate tried, in grid order.</param>
/// <param name="Training">The loop's result of the chosen run.</param>
/// <param name="Model">The chosen run's model when <see cref="ComparisonOptions.KeepModels"/> is set (the caller disposes it).</param>
public sealed record ComparisonEntry(AlignmentObjective Objective, ComparisonCandidate Best, IReadOnlyList<ComparisonCandidate> Candidates,
    TrainingResult Training, ICausalLanguageModel? Model);
