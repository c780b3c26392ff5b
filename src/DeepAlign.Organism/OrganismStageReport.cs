namespace DeepAlign.Organism;

/// <summary>Measurements of one training stage of the build.</summary>
/// <param name="Steps">Optimiser steps.</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="TokensPerSecond">Real (non-pad) tokens per second.</param>
/// <param name="Tokens">Real tokens processed.</param>
/// <param name="FirstLoss">Loss of the first step.</param>
/// <param name="FinalLoss">Mean loss of the last 10 steps.</param>
/// <param name="Epochs">Passes over the stage's data.</param>
public sealed record OrganismStageReport(long Steps, double Seconds, double TokensPerSecond, long Tokens, double FirstLoss, double FinalLoss, double Epochs);
