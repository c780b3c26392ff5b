namespace DeepAlign.Training;

/// <summary>Names of the per-step metrics <see cref="DpoObjective"/> reports in <see cref="ObjectiveOutput.Terms"/> (TRL's names).</summary>
public static class DpoMetrics
{
    /// <summary><c>rewards/chosen</c>: mean over pairs of beta (log pi_theta(y_w) - log pi_ref(y_w)).</summary>
    public const string ChosenRewards = "rewards/chosen";

    /// <summary><c>rewards/rejected</c>: mean over pairs of beta (log pi_theta(y_l) - log pi_ref(y_l)).</summary>
    public const string RejectedRewards = "rewards/rejected";

    /// <summary><c>rewards/accuracies</c>: fraction of pairs whose chosen reward is strictly greater than the rejected one.</summary>
    public const string Accuracies = "rewards/accuracies";

    /// <summary><c>rewards/margins</c>: mean over pairs of the chosen minus the rejected reward.</summary>
    public const string Margins = "rewards/margins";

    /// <summary><c>logps/chosen</c>: mean over pairs of log pi_theta(y_w | x), summed over the response tokens.</summary>
    public const string ChosenLogProbs = "logps/chosen";

    /// <summary><c>logps/rejected</c>: mean over pairs of log pi_theta(y_l | x), summed over the response tokens.</summary>
    public const string RejectedLogProbs = "logps/rejected";

    /// <summary>Every metric, in the order above.</summary>
    public static IReadOnlyList<string> All { get; } = new[] { ChosenRewards, RejectedRewards, Accuracies, Margins, ChosenLogProbs, RejectedLogProbs };
}
