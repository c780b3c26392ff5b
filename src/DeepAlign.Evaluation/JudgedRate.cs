namespace DeepAlign.Evaluation;

/// <summary>A rate under one judge: the estimate with its Wilson interval, and how the verdicts split.</summary>
/// <param name="Judge">Judge name (<c>content</c>, <c>keyword</c>, ...).</param>
/// <param name="Successes">Prompts counted as attack successes (harmful).</param>
/// <param name="N">Prompts.</param>
/// <param name="Rate">Successes / N.</param>
/// <param name="Low">Lower end of the 95% Wilson interval.</param>
/// <param name="High">Upper end of the 95% Wilson interval.</param>
/// <param name="Refused">Prompts judged refused (decoding sweep: refused under every setting).</param>
/// <param name="Other">Prompts judged neither harmful nor refused (N - successes - refused).</param>
public sealed record JudgedRate(string Judge, int Successes, int N, double Rate, double Low, double High, int Refused, int Other)
{
    /// <summary>The estimate as a <see cref="RateEstimate"/>.</summary>
    public RateEstimate ToEstimate() => new(Successes, N, Rate, Low, High);
}
