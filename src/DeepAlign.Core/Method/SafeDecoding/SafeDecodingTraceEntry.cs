namespace DeepAlign.Method.SafeDecoding;

/// <summary>
/// What SafeDecoding did for one row at one step (recorded when <see cref="SafeDecodingOptions.Trace"/> is on).
/// Probabilities are of the chosen token; the SafeDecoding distribution is <c>softmax</c> of the scores before
/// temperature, top-k and top-p.
/// </summary>
/// <param name="Row">Index of the request in the generation call.</param>
/// <param name="Step">Decoding step (0 for the token chosen after the prefill).</param>
/// <param name="ResponsePosition">Response position j of the chosen token (1-based, counting forced prefix tokens).</param>
/// <param name="TokenId">The chosen token (sampled, greedy or forced by a token forcer).</param>
/// <param name="Steered">Whether this step was steered (inside the first m tokens); otherwise the original model decoded alone.</param>
/// <param name="SampleSpaceSize">Number of tokens with a finite score (|V^(c)| on a steered step).</param>
/// <param name="IntersectionDepth">The k whose top-k intersection formed the sample space; null when not steered.</param>
/// <param name="OriginalProbability">p_orig of the chosen token.</param>
/// <param name="ExpertProbability">p_expert of the chosen token; null when not steered.</param>
/// <param name="SafeDecodingProbability">Probability of the chosen token under <c>softmax</c> of the scores (0 outside the sample space).</param>
public sealed record SafeDecodingTraceEntry(
    int Row,
    int Step,
    int ResponsePosition,
    long TokenId,
    bool Steered,
    int SampleSpaceSize,
    int? IntersectionDepth,
    double OriginalProbability,
    double? ExpertProbability,
    double SafeDecodingProbability)
{
    /// <summary>How much SafeDecoding changed the chosen token's probability: <c>SafeDecodingProbability - OriginalProbability</c>.</summary>
    public double ProbabilityShift => SafeDecodingProbability - OriginalProbability;
}
