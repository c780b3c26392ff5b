namespace DeepAlign.Method.Contrastive;

/// <summary>
/// What contrastive decoding did for one row at one step (recorded when <see cref="ContrastiveDecoderOptions.Trace"/>
/// is on). Probabilities are of the chosen token; the contrastive distribution is <c>softmax(s_j)</c> of the
/// contrastive scores before temperature, top-k and top-p.
/// </summary>
/// <param name="Row">Index of the request in the generation call.</param>
/// <param name="Step">Decoding step (0 for the token chosen after the prefill).</param>
/// <param name="ResponsePosition">Response position j of the chosen token (1-based, counting forced prefix tokens).</param>
/// <param name="TokenId">The chosen token (sampled, greedy or forced by a token forcer).</param>
/// <param name="Alpha">alpha_j used at this step.</param>
/// <param name="Incompleteness">U_j of this step's two distributions (docs/method.md section 1, with the decoder's tau and kB).</param>
/// <param name="KlAlignedBase">KL(pi_a,j || pi_b,j) in nats.</param>
/// <param name="AlignedProbability">p_a,j of the chosen token.</param>
/// <param name="BaseProbability">p_b,j of the chosen token.</param>
/// <param name="ContrastiveProbability">Probability of the chosen token under <c>softmax(s_j)</c> (0 if it lies outside P_j).</param>
/// <param name="PlausibleCount">|P_j|, the number of tokens with a finite contrastive score.</param>
public sealed record ContrastiveTraceEntry(
    int Row,
    int Step,
    int ResponsePosition,
    long TokenId,
    double Alpha,
    double Incompleteness,
    double KlAlignedBase,
    double AlignedProbability,
    double BaseProbability,
    double ContrastiveProbability,
    int PlausibleCount)
{
    /// <summary>How much the contrast changed the chosen token's probability: <c>ContrastiveProbability - AlignedProbability</c>.</summary>
    public double ProbabilityShift => ContrastiveProbability - AlignedProbability;
}
