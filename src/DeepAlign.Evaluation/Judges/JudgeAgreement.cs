namespace DeepAlign.Evaluation.Judges;

/// <summary>
/// How far two judges agree on the same responses: the confusion matrix of their verdicts and, derived from it, the
/// share of identical verdicts and Cohen's kappa, over the four verdicts and over the binary decision that makes the
/// attack success rate (harmful or not). Counts add up, so agreements of shards, attacks, defenses or seeds pool exactly
/// (<see cref="Sum"/>).
/// </summary>
/// <param name="Judge">The compared judge's name (e.g. <c>keyword</c>).</param>
/// <param name="Reference">The reference judge's name (the evaluation's primary judge, e.g. <c>content</c>).</param>
/// <param name="Counts">The 4 x 4 confusion matrix: <c>Counts[r][c]</c> responses got verdict <see cref="Verdicts"/>[r]
/// from <paramref name="Reference"/> and <see cref="Verdicts"/>[c] from <paramref name="Judge"/>.</param>
/// <remarks>Cohen's kappa = (p_o - p_e) / (1 - p_e), p_o the observed agreement and p_e = sum_k (row_k / n)(column_k / n)
/// the agreement expected by chance from the two judges' marginal shares (Cohen 1960). It is undefined (null) when
/// p_e = 1, i.e. both judges gave one and the same verdict to every response, and when there are no responses.</remarks>
public sealed record JudgeAgreement(string Judge, string Reference, IReadOnlyList<IReadOnlyList<int>> Counts)
{
    /// <summary>The verdicts in matrix order: Harmful, Refused, Other, Unparseable.</summary>
    public static IReadOnlyList<SafetyVerdict> Verdicts { get; } = [SafetyVerdict.Harmful, SafetyVerdict.Refused, SafetyVerdict.Other, SafetyVerdict.Unparseable];

    /// <summary>Counts the verdict pairs of two judges on the same responses.</summary>
    /// <param name="judge">The compared judge's name.</param>
    /// <param name="reference">The reference judge's name.</param>
    /// <param name="judgeVerdicts">The compared judge's verdicts.</param>
    /// <param name="referenceVerdicts">The reference judge's verdicts on the same responses, in the same order.</param>
    /// <exception cref="ArgumentException">The lists differ in length, or a verdict is not a defined value.</exception>
    public static JudgeAgreement FromVerdicts(string judge, string reference, IReadOnlyList<SafetyVerdict> judgeVerdicts, IReadOnlyList<SafetyVerdict> referenceVerdicts)
    {
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(judgeVerdicts);
        ArgumentNullException.ThrowIfNull(referenceVerdicts);
        if (judgeVerdicts.Count != referenceVerdicts.Count)
            throw new ArgumentException($"{judgeVerdicts.Count} verdicts of {judge} but {referenceVerdicts.Count} of {reference}.", nameof(referenceVerdicts));
        var counts = Empty();
        for (int i = 0; i < judgeVerdicts.Count; i++)
            counts[Index(referenceVerdicts[i], nameof(referenceVerdicts))][Index(judgeVerdicts[i], nameof(judgeVerdicts))]++;
        return new JudgeAgreement(judge, reference, counts);
    }

    /// <summary>Pools agreements of the same two judges (e.g. over attacks, defenses, seeds or shards) by adding their counts.</summary>
    /// <param name="parts">At least one agreement; all with the same <see cref="Judge"/> and <see cref="Reference"/>.</param>
    /// <exception cref="ArgumentException">No parts, the judges differ, or a matrix is not 4 x 4 with non-negative counts.</exception>
    public static JudgeAgreement Sum(IEnumerable<JudgeAgreement> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var list = parts.ToList();
        if (list.Count == 0) throw new ArgumentException("At least one agreement is needed.", nameof(parts));
        var counts = Empty();
        foreach (var p in list)
        {
            p.Validate();
            if (p.Judge != list[0].Judge || p.Reference != list[0].Reference)
                throw new ArgumentException($"Cannot pool the agreement of {p.Judge} with {p.Reference} into that of {list[0].Judge} with {list[0].Reference}.", nameof(parts));
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 4; c++) counts[r][c] = checked(counts[r][c] + p.Counts[r][c]);
        }
        return new JudgeAgreement(list[0].Judge, list[0].Reference, counts);
    }

    /// <summary>Checks that <see cref="Counts"/> is 4 x 4 with non-negative entries (e.g. after reading a results file).</summary>
    /// <exception cref="ArgumentException">It is not.</exception>
    public JudgeAgreement Validate()
    {
        if (Counts is null || Counts.Count != 4 || Counts.Any(row => row is null || row.Count != 4))
            throw new ArgumentException($"The agreement of {Judge} with {Reference} needs a 4 x 4 count matrix (verdicts Harmful, Refused, Other, Unparseable).", nameof(Counts));
        if (Counts.Any(row => row.Any(c => c < 0)))
            throw new ArgumentException($"The agreement of {Judge} with {Reference} has a negative count.", nameof(Counts));
        return this;
    }

    /// <summary>Responses on which <see cref="Reference"/> said <paramref name="reference"/> and <see cref="Judge"/> said <paramref name="judge"/>.</summary>
    public int Count(SafetyVerdict reference, SafetyVerdict judge) => Counts[Index(reference, nameof(reference))][Index(judge, nameof(judge))];

    /// <summary>Responses compared.</summary>
    public int N => Counts.Sum(row => row.Sum());

    /// <summary>Share of responses with the same verdict from both judges (null without responses).</summary>
    public double? Agreement => N == 0 ? null : (double)Enumerable.Range(0, 4).Sum(k => Counts[k][k]) / N;

    /// <summary>Cohen's kappa over the four verdicts (null when undefined, see the remarks).</summary>
    public double? Kappa => CohenKappa(Counts);

    /// <summary>Share of responses on which both judges agree whether the response is harmful (null without responses).</summary>
    public double? HarmfulAgreement => N == 0 ? null : (double)(N - HarmfulOnlyByReference - HarmfulOnlyByJudge) / N;

    /// <summary>Cohen's kappa of the binary decision harmful / not harmful (null when undefined).</summary>
    public double? HarmfulKappa
    {
        get
        {
            int both = Counts[0][0], notHarmful = N - both - HarmfulOnlyByReference - HarmfulOnlyByJudge;
            IReadOnlyList<IReadOnlyList<int>> binary = [[both, HarmfulOnlyByReference], [HarmfulOnlyByJudge, notHarmful]];
            return CohenKappa(binary);
        }
    }

    private int HarmfulOnlyByReference => Counts[0][1] + Counts[0][2] + Counts[0][3];
    private int HarmfulOnlyByJudge => Counts[1][0] + Counts[2][0] + Counts[3][0];

    /// <summary>(n * diagonal - sum_k row_k column_k) / (n^2 - sum_k row_k column_k), in exact integers until the division.</summary>
    private static double? CohenKappa(IReadOnlyList<IReadOnlyList<int>> m)
    {
        int k = m.Count;
        long n = 0, diagonal = 0, chance = 0;
        for (int r = 0; r < k; r++)
        {
            diagonal += m[r][r];
            for (int c = 0; c < k; c++) n += m[r][c];
        }
        for (int i = 0; i < k; i++)
        {
            long row = 0, column = 0;
            for (int j = 0; j < k; j++) { row += m[i][j]; column += m[j][i]; }
            chance += row * column;
        }
        long denominator = n * n - chance;
        if (n == 0 || denominator == 0) return null;
        return (double)(n * diagonal - chance) / denominator;
    }

    private static int[][] Empty() => [new int[4], new int[4], new int[4], new int[4]];

    private static int Index(SafetyVerdict verdict, string parameter) => verdict switch
    {
        SafetyVerdict.Harmful => 0,
        SafetyVerdict.Refused => 1,
        SafetyVerdict.Other => 2,
        SafetyVerdict.Unparseable => 3,
        _ => throw new ArgumentException($"{(int)verdict} is not a SafetyVerdict.", parameter),
    };
}
