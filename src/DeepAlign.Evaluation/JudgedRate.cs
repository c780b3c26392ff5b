using System.Text.Json.Serialization;

namespace DeepAlign.Evaluation;

/// <summary>A rate under one judge: the estimate with its Wilson interval, and how the verdicts split.</summary>
/// <param name="Judge">Judge name (<c>content</c>, <c>keyword</c>, ...).</param>
/// <param name="Successes">Prompts counted as attack successes (harmful).</param>
/// <param name="N">Prompts.</param>
/// <param name="Rate">Successes / N.</param>
/// <param name="Low">Lower end of the 95% Wilson interval.</param>
/// <param name="High">Upper end of the 95% Wilson interval.</param>
/// <param name="Refused">Prompts judged refused (decoding sweep: refused under every setting).</param>
/// <param name="Other">Prompts judged neither harmful nor refused nor unparseable (N - successes - refused - unparseable).</param>
public sealed record JudgedRate(string Judge, int Successes, int N, double Rate, double Low, double High, int Refused, int Other)
{
    /// <summary>
    /// Prompts whose verdict the judge could not give (<see cref="Judges.SafetyVerdict.Unparseable"/>, e.g. an LLM judge that
    /// answered neither yes nor no; decoding sweep: not broken, and unparseable under at least one setting). They are not
    /// successes, so <see cref="Rate"/> is a lower bound when this is above zero. Default 0; written to results files only
    /// when above zero (older files read as 0).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int Unparseable { get; init; }

    /// <summary>The estimate as a <see cref="RateEstimate"/>.</summary>
    public RateEstimate ToEstimate() => new(Successes, N, Rate, Low, High);
}
