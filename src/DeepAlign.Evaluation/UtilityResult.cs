namespace DeepAlign.Evaluation;

/// <summary>Utility of a defense on benign prompts.</summary>
/// <param name="BenignAccuracy">Greedy answers exactly equal (whitespace-collapsed) to the reference, with Wilson interval.</param>
/// <param name="Perplexity">exp(mean negative log-likelihood) of the reference answers (end-of-turn included) under the
/// defense's renormalised scores; +infinity is written as null when a reference token is excluded.</param>
/// <param name="Agreement">Share of greedy answers identical to the aligned model's (null when not computed).</param>
/// <param name="ByCategory">Benign accuracy by category.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record UtilityResult(JudgedRate BenignAccuracy, double? Perplexity, JudgedRate? Agreement, IReadOnlyDictionary<string, double> ByCategory, double Seconds);
