using System.Globalization;

namespace DeepAlign.Organism.Experiment;

/// <summary>
/// The budget every retrained defense of the organism experiment gets (equal budget: same steps, learning rate,
/// schedule, batch and data for every objective).
/// </summary>
public sealed record DefenseTrainingBudget
{
    /// <summary>Optimiser steps. Default 200.</summary>
    public int Steps { get; init; } = 200;
    /// <summary>Sequences per step. Default 16.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate (warmup, then cosine to 0.1 of it). Default 5e-4.</summary>
    public double LearningRate { get; init; } = 5e-4;
    /// <summary>Linear warmup steps. Default 10.</summary>
    public int WarmupSteps { get; init; } = 10;
    /// <summary>Seed of the data order and prefix draws. Default 17.</summary>
    public int Seed { get; init; } = 17;

    /// <summary>A canonical text of the budget; part of each trained defense's cache key.</summary>
    public string Canonical() => string.Create(CultureInfo.InvariantCulture,
        $"defense-training-1;steps={Steps};batch={BatchSize};lr={LearningRate:R};warmup={WarmupSteps};seed={Seed};schedule=cosine(min 0.1);clip=1.0;full fine-tuning");

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public DefenseTrainingBudget Validate()
    {
        if (Steps < 1) throw new ArgumentException("DefenseTrainingBudget.Steps must be at least 1.", nameof(Steps));
        if (BatchSize < 1) throw new ArgumentException("DefenseTrainingBudget.BatchSize must be at least 1.", nameof(BatchSize));
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException("DefenseTrainingBudget.LearningRate must be positive.", nameof(LearningRate));
        if (WarmupSteps < 0) throw new ArgumentException("DefenseTrainingBudget.WarmupSteps must be non-negative.", nameof(WarmupSteps));
        return this;
    }
}
