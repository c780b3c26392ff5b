namespace DeepAlign.Organism;

/// <summary>Progress of an organism build.</summary>
/// <param name="Stage">The current stage.</param>
/// <param name="Step">Optimiser steps done in the stage (0 outside training).</param>
/// <param name="TotalSteps">Steps of the stage (0 outside training).</param>
/// <param name="Loss">Loss of the last step (NaN outside training).</param>
/// <param name="TokensPerSecond">Real tokens per second of the stage so far.</param>
/// <param name="Elapsed">Time since the stage began.</param>
public readonly record struct OrganismBuildProgress(OrganismBuildStage Stage, long Step, long TotalSteps, double Loss, double TokensPerSecond, TimeSpan Elapsed);
