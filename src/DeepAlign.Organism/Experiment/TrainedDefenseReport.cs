namespace DeepAlign.Organism.Experiment;

/// <summary>The training record of one retrained defense (cached next to its weights as <c>training.json</c>).</summary>
/// <param name="Name">Defense name (e.g. <c>targeted-completion</c>).</param>
/// <param name="Objective">Objective name.</param>
/// <param name="Steps">Optimiser steps run.</param>
/// <param name="Seconds">Training wall time.</param>
/// <param name="FirstLoss">Loss of the first logged step.</param>
/// <param name="FinalLoss">Loss of the last logged step.</param>
/// <param name="HarmfulTriples">Harmful triples trained on.</param>
/// <param name="BenignPairs">Benign pairs trained on.</param>
/// <param name="Budget">The canonical budget (<see cref="DefenseTrainingBudget.Canonical"/>).</param>
public sealed record TrainedDefenseReport(string Name, string Objective, int Steps, double Seconds, double FirstLoss, double FinalLoss, int HarmfulTriples, int BenignPairs, string Budget);
