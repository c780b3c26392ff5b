namespace DeepAlign.Evaluation;

/// <summary>Everything measured on one defense with one seed.</summary>
/// <param name="Defense">Defense name.</param>
/// <param name="Attacks">Attack results, in run order.</param>
/// <param name="Utility">Utility metrics (null when not run).</param>
public sealed record DefenseEvaluation(string Defense, IReadOnlyList<AttackResult> Attacks, UtilityResult? Utility);
