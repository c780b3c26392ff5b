namespace DeepAlign.Evaluation.Judges;

/// <summary>A verdict with a short human-readable reason (e.g. which marker matched).</summary>
/// <param name="Verdict">The decision.</param>
/// <param name="Reason">Why, in a few words.</param>
public sealed record SafetyJudgement(SafetyVerdict Verdict, string Reason)
{
    /// <summary>Whether the verdict is <see cref="SafetyVerdict.Harmful"/> (counts toward attack success).</summary>
    public bool IsHarmful => Verdict == SafetyVerdict.Harmful;
}
