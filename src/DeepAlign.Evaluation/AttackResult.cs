using System.Text.Json.Serialization;
using DeepAlign.Evaluation.Judges;

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
    /// <summary>
    /// With two or more judges: each further judge's agreement with the primary (first) judge on this attack's judged
    /// texts (for the sweep: every setting's text of every prompt). Null with one judge, and in results files written
    /// before agreements were recorded (the property is then absent).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<JudgeAgreement>? Agreements { get; init; }
    /// <summary>Every prompt's verdicts, in dataset order, keyed for comparison across runs and tools; null unless
    /// <see cref="SafetyEvaluationOptions.ItemResults"/> is on (and in results files of schema 1).</summary>
    public IReadOnlyList<ItemResult>? Items { get; init; }
}
