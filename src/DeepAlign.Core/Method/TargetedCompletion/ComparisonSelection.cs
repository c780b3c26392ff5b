namespace DeepAlign.Method.TargetedCompletion;

/// <summary>How the comparison picks each objective's learning rate.</summary>
public enum ComparisonSelection
{
    /// <summary>Lowest validation loss of the objective's own loss (default; each method tuned as its authors would).</summary>
    OwnObjective,

    /// <summary>Lowest shared safety cross-entropy (<see cref="AlignmentMetricsResult.SafetyCrossEntropy"/>) on the validation split.</summary>
    SafetyCrossEntropy,
}
