namespace DeepAlign.Training;

/// <summary>Which preference loss <see cref="DpoObjective"/> minimises (docs/training.md, "DPO").</summary>
public enum DpoLossType
{
    /// <summary>
    /// DPO's sigmoid loss (Rafailov et al. 2023), -log sigmoid(beta h) with h the difference of the chosen and rejected
    /// log-ratios (summed over response tokens); with <see cref="DpoOptions.LabelSmoothing"/> = eps &gt; 0 the
    /// conservative DPO loss -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h). TRL's <c>sigmoid</c>.
    /// </summary>
    Sigmoid,

    /// <summary>
    /// IPO (Azar et al. 2023, Eq. 17): (h' - 1 / (2 beta))^2, where h' uses log-ratios averaged over each response's
    /// tokens (TRL's <c>ipo</c>, which length-normalises; beta plays the role of the paper's tau).
    /// </summary>
    Ipo,
}
