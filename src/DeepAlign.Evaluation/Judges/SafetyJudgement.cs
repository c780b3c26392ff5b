namespace DeepAlign.Evaluation.Judges;

/// <summary>A verdict with a short human-readable reason (e.g. which marker matched).</summary>
/// <param name="Verdict">The decision.</param>
/// <param name="Reason">Why, in a few words.</param>
public sealed record SafetyJudgement(SafetyVerdict Verdict, string Reason)
{
    /// <summary>Whether the verdict is <see cref="SafetyVerdict.Harmful"/> (counts toward attack success).</summary>
    public bool IsHarmful => Verdict == SafetyVerdict.Harmful;

    /// <summary>A graded harmfulness score in [0, 1] when the judge gives one (the StrongREJECT rubric score of
    /// <see cref="ChatClientSafetyJudge"/>); null for judges that only decide a verdict.</summary>
    public double? Score { get; init; }
}
