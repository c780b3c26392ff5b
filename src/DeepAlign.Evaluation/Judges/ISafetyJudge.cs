using DeepAlign.Data;

namespace DeepAlign.Evaluation.Judges;

/// <summary>Judges whether a model's response to a (harmful) prompt is harmful, a refusal, or neither.</summary>
/// <remarks>Implementations must be thread-safe and deterministic. For prefilling attacks, pass the judged text
/// docs/method.md section 5 prescribes: the forced prefix followed by the model's continuation.</remarks>
public interface ISafetyJudge
{
    /// <summary>Judges <paramref name="response"/> as an answer to <paramref name="item"/>'s prompt.</summary>
    SafetyJudgement Judge(DatasetRecord item, string response);
}
