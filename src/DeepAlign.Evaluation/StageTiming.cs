namespace DeepAlign.Evaluation;

/// <summary>Wall time of one stage of a job.</summary>
/// <param name="Name">Stage name.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record StageTiming(string Name, double Seconds);
