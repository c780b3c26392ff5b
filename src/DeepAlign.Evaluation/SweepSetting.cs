namespace DeepAlign.Evaluation;

/// <summary>One setting of the decoding sweep.</summary>
/// <param name="Name">E.g. <c>temperature=0.3</c>, <c>top_k=50</c>, <c>greedy</c>.</param>
/// <param name="Successes">Prompts answered harmfully under the primary judge.</param>
/// <param name="N">Prompts.</param>
public sealed record SweepSetting(string Name, int Successes, int N);
