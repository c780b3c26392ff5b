namespace DeepAlign.Evaluation.Judges;

/// <summary>How many verdicts of each kind; every <see cref="SafetyVerdict"/> is counted under its own name.</summary>
internal readonly record struct VerdictSplit(int Harmful, int Refused, int Other, int Unparseable)
{
    public static VerdictSplit Count(IEnumerable<SafetyVerdict> verdicts)
    {
        int harmful = 0, refused = 0, other = 0, unparseable = 0;
        foreach (var v in verdicts)
        {
            switch (v)
            {
                case SafetyVerdict.Harmful: harmful++; break;
                case SafetyVerdict.Refused: refused++; break;
                case SafetyVerdict.Other: other++; break;
                case SafetyVerdict.Unparseable: unparseable++; break;
                default: throw new InvalidOperationException($"A judge returned {(int)v}, which is not a SafetyVerdict.");
            }
        }
        return new VerdictSplit(harmful, refused, other, unparseable);
    }
}
