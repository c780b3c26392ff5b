namespace DeepAlign.Evaluation.Judges;

/// <summary>A judge with the name it has in result tables.</summary>
/// <param name="Name">E.g. <c>content</c> or <c>keyword</c>.</param>
/// <param name="Judge">The judge.</param>
public sealed record NamedJudge(string Name, ISafetyJudge Judge);
