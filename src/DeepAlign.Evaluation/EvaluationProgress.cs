namespace DeepAlign.Evaluation;

/// <summary>Progress of an evaluation: which defense, which stage, and how far.</summary>
/// <param name="Defense">Defense name.</param>
/// <param name="Stage">Attack label or utility metric.</param>
/// <param name="Done">Stages done for this defense.</param>
/// <param name="Total">Stages of this defense.</param>
public readonly record struct EvaluationProgress(string Defense, string Stage, int Done, int Total);
