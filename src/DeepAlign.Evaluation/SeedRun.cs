namespace DeepAlign.Evaluation;

/// <summary>All defenses evaluated with one seed.</summary>
/// <param name="Seed">The sampling seed.</param>
/// <param name="Defenses">One evaluation per defense.</param>
public sealed record SeedRun(long Seed, IReadOnlyList<DefenseEvaluation> Defenses);
