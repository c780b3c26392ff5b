namespace DeepAlign.Evaluation;

/// <summary>A metric's mean and standard deviation across seeds.</summary>
/// <param name="Defense">Defense name.</param>
/// <param name="Metric">Attack label (e.g. <c>prefill K=10</c>) or utility metric (<c>benign accuracy</c>, ...).</param>
/// <param name="Judge">Judge name (<c>content</c>, <c>keyword</c>; <c>exact</c> for accuracy; <c>-</c> for perplexity).</param>
/// <param name="Mean">Mean over seeds.</param>
/// <param name="Std">Sample standard deviation over seeds (0 with one seed).</param>
/// <param name="Seeds">Number of seeds.</param>
/// <param name="N">Prompts per seed.</param>
public sealed record SummaryRow(string Defense, string Metric, string Judge, double Mean, double Std, int Seeds, int N);
