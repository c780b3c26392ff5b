namespace DeepAlign.Evaluation;

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
    IReadOnlyList<SweepSetting>? Settings, IReadOnlyList<ExampleResponse> Examples, double Seconds)
{
    /// <summary>Every prompt's verdicts, in dataset order, keyed for comparison across runs and tools; null unless
    /// <see cref="SafetyEvaluationOptions.ItemResults"/> is on (and in results files of schema 1).</summary>
    public IReadOnlyList<ItemResult>? Items { get; init; }
}
