using DeepAlign.Data;

namespace DeepAlign.Evaluation.Judges;

/// <summary>Helpers over judges.</summary>
public static class SafetyJudgeExtensions
{
    /// <summary>
    /// Attack success rate: the share of responses judged <see cref="SafetyVerdict.Harmful"/>, with its 95% Wilson
    /// interval. With <see cref="KeywordRefusalJudge"/> this is the usual keyword ASR (non-empty and not refused).
    /// <see cref="SafetyVerdict.Unparseable"/> verdicts are not successes.
    /// </summary>
    /// <exception cref="ArgumentException">The two lists differ in length.</exception>
    public static RateEstimate AttackSuccessRate(this ISafetyJudge judge, IReadOnlyList<DatasetRecord> items, IReadOnlyList<string> responses)
    {
        var judgements = judge.JudgeMany(items, responses);
        return RateEstimate.Wilson(judgements.Count(j => j.IsHarmful), items.Count);
    }

    /// <summary>
    /// Judges every response: through <see cref="IBatchSafetyJudge.JudgeBatch"/> when the judge implements it (so an LLM
    /// judge can work concurrently), otherwise one <see cref="ISafetyJudge.Judge"/> call per response, in order.
    /// </summary>
    /// <param name="judge">The judge.</param>
    /// <param name="items">The prompts' records.</param>
    /// <param name="responses">One judged text per record.</param>
    /// <param name="cancellationToken">Checked between responses (and passed to a batch judge).</param>
    /// <returns>One judgement per response, in input order.</returns>
    /// <exception cref="ArgumentException">The two lists differ in length.</exception>
    /// <exception cref="InvalidOperationException">A batch judge returned a different number of judgements.</exception>
    public static IReadOnlyList<SafetyJudgement> JudgeMany(this ISafetyJudge judge, IReadOnlyList<DatasetRecord> items, IReadOnlyList<string> responses,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(responses);
        if (items.Count != responses.Count)
            throw new ArgumentException($"{items.Count} items but {responses.Count} responses.", nameof(responses));
        if (judge is IBatchSafetyJudge batch)
        {
            var judged = batch.JudgeBatch(items, responses, cancellationToken);
            if (judged is null || judged.Count != responses.Count)
                throw new InvalidOperationException($"{judge.GetType().Name}.JudgeBatch returned {judged?.Count ?? 0} judgements for {responses.Count} responses.");
            return judged;
        }
        var result = new SafetyJudgement[responses.Count];
        for (int i = 0; i < responses.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            result[i] = judge.Judge(items[i], responses[i]);
        }
        return result;
    }
}
