namespace DeepAlign.Method.TargetedCompletion;

/// <summary>Settings of <see cref="TargetedCompletionComparison"/>.</summary>
public sealed record ComparisonOptions
{
    /// <summary>Objectives to train. Default all four.</summary>
    public IReadOnlyList<AlignmentObjective> Objectives { get; init; } = AlignmentObjectives.All;

    /// <summary>The learning-rate grid every objective is searched over. Default 1e-5, 2e-5, 5e-5 (around Qi et al.'s 2e-5; our choice).</summary>
    public IReadOnlyList<double> LearningRates { get; init; } = new[] { 1e-5, 2e-5, 5e-5 };

    /// <summary>Share of each dataset held out for validation (at least one record each). Default 0.1 (our choice).</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>How the learning rate is picked. Default <see cref="ComparisonSelection.OwnObjective"/>.</summary>
    public ComparisonSelection SelectBy { get; init; } = ComparisonSelection.OwnObjective;

    /// <summary>
    /// Everything else, shared by every run: the loop (steps, batch, schedule, seed; its learning rate is replaced by
    /// the grid), the method options and data settings, LoRA. Its <see cref="TargetedCompletionTrainerOptions.Objective"/>
    /// is replaced per run.
    /// </summary>
    public TargetedCompletionTrainerOptions Training { get; init; } = new();

    /// <summary>Give the constrained objective Qi et al.'s AdamW beta1 = 0.5 (everything else keeps the shared loop's). Default true.</summary>
    public bool ConstrainedUsesBeta1Half { get; init; } = true;

    /// <summary>First response position counted as late in the U_j metrics. Default 6.</summary>
    public int LateFrom { get; init; } = 6;

    /// <summary>Keep each objective's best model in the result (the caller disposes it); false disposes it. Default true.</summary>
    public bool KeepModels { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public ComparisonOptions Validate()
    {
        if (Objectives is null || Objectives.Count == 0) throw new ArgumentException("ComparisonOptions.Objectives must list at least one objective.", nameof(Objectives));
        if (LearningRates is null || LearningRates.Count == 0 || LearningRates.Any(l => !(l > 0) || double.IsInfinity(l)))
            throw new ArgumentException("ComparisonOptions.LearningRates must list positive finite learning rates.", nameof(LearningRates));
        if (!(ValidationFraction > 0 && ValidationFraction < 1)) throw new ArgumentException($"ComparisonOptions.ValidationFraction = {ValidationFraction}: must be in (0, 1).", nameof(ValidationFraction));
        if (!Enum.IsDefined(SelectBy)) throw new ArgumentException($"ComparisonOptions.SelectBy has an unknown value {(int)SelectBy}.", nameof(SelectBy));
        if (Training is null) throw new ArgumentException("ComparisonOptions.Training must be set.", nameof(Training));
        if (LateFrom < 2) throw new ArgumentException($"ComparisonOptions.LateFrom = {LateFrom}: must be >= 2.", nameof(LateFrom));
        Training.Validate();
        return this;
    }
}
