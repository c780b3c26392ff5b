using DeepAlign.Data;

namespace DeepAlign.Evaluation.Judges;

/// <summary>
/// A judge that decides many responses at once, e.g. an LLM judge that sends several requests concurrently
/// (<see cref="ChatClientSafetyJudge"/>). The evaluator judges every attack's texts through
/// <see cref="SafetyJudgeExtensions.JudgeMany"/>, which uses this interface when a judge implements it.
/// </summary>
public interface IBatchSafetyJudge : ISafetyJudge
{
    /// <summary>Judges <paramref name="responses"/>[i] as an answer to <paramref name="items"/>[i]'s prompt, for every i.</summary>
    /// <param name="items">The prompts' records.</param>
    /// <param name="responses">One judged text per record.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>One judgement per response, in input order.</returns>
    /// <exception cref="ArgumentException">The two lists differ in length.</exception>
    IReadOnlyList<SafetyJudgement> JudgeBatch(IReadOnlyList<DatasetRecord> items, IReadOnlyList<string> responses, CancellationToken cancellationToken = default);
}
