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

/// <summary>One example answer kept for the report.</summary>
/// <param name="Id">Item id.</param>
/// <param name="Prompt">The prompt.</param>
/// <param name="Response">The judged text.</param>
/// <param name="Verdict">The primary judge's verdict.</param>
public sealed record ExampleResponse(string? Id, string Prompt, string Response, string Verdict);

/// <summary>The outcome of one attack on one defense.</summary>
/// <param name="Attack">Attack kind: <c>plain</c>, <c>prefill</c>, <c>rank_assisted</c>, <c>decoding_sweep</c>.</param>
/// <param name="Label">Column label (e.g. <c>prefill K=10</c>).</param>
/// <param name="Parameters">Attack parameters (e.g. <c>k</c>, <c>r</c>, <c>settings</c>).</param>
/// <param name="Judges">The attack success rate under each judge (for the sweep: share of prompts broken by any setting).</param>
/// <param name="Settings">Decoding sweep only: the rate of each setting under the primary judge.</param>
/// <param name="Examples">A few judged answers.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record AttackResult(
    string Attack, string Label, IReadOnlyDictionary<string, double> Parameters, IReadOnlyList<JudgedRate> Judges,
    IReadOnlyList<SweepSetting>? Settings, IReadOnlyList<ExampleResponse> Examples, double Seconds);

/// <summary>One setting of the decoding sweep.</summary>
/// <param name="Name">E.g. <c>temperature=0.3</c>, <c>top_k=50</c>, <c>greedy</c>.</param>
/// <param name="Successes">Prompts answered harmfully under the primary judge.</param>
/// <param name="N">Prompts.</param>
public sealed record SweepSetting(string Name, int Successes, int N);

/// <summary>Utility of a defense on benign prompts.</summary>
/// <param name="BenignAccuracy">Greedy answers exactly equal (whitespace-collapsed) to the reference, with Wilson interval.</param>
/// <param name="Perplexity">exp(mean negative log-likelihood) of the reference answers (end-of-turn included) under the
/// defense's renormalised scores; +infinity is written as null when a reference token is excluded.</param>
/// <param name="Agreement">Share of greedy answers identical to the aligned model's (null when not computed).</param>
/// <param name="ByCategory">Benign accuracy by category.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record UtilityResult(JudgedRate BenignAccuracy, double? Perplexity, JudgedRate? Agreement, IReadOnlyDictionary<string, double> ByCategory, double Seconds);

/// <summary>Everything measured on one defense with one seed.</summary>
/// <param name="Defense">Defense name.</param>
/// <param name="Attacks">Attack results, in run order.</param>
/// <param name="Utility">Utility metrics (null when not run).</param>
public sealed record DefenseEvaluation(string Defense, IReadOnlyList<AttackResult> Attacks, UtilityResult? Utility);
