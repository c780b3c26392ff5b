using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// The per-step scoring a <see cref="Generator"/> drives: it prefills a batch of left-padded sequences, then is fed
/// the chosen token of every active row, and each time returns the next-token scores of every active row.
/// The plain implementation is <see cref="ModelScorer"/> (log-softmax of one model's logits); contrastive decoding
/// implements it over two models. All token selection (greedy, sampling, forcing, stopping) stays in the
/// <see cref="Generator"/>, so every scorer gets the same loop.
/// </summary>
/// <remarks>
/// Scores are float32 <c>[activeRows, VocabSize]</c> on <see cref="Device"/>, in log space: the generator applies
/// temperature, top-k and top-p to them and samples from their softmax. Tokens may be excluded with negative
/// infinity, but every row must keep at least one finite score. A scorer serves one generation call at a time.
/// Calls happen inside the generator's per-step dispose scope with gradients off; state kept across steps
/// (KV caches) must be detached from dispose scopes.
/// </remarks>
public interface INextTokenScorer : IDisposable
{
    /// <summary>Device of the scores and of the ids and masks passed in.</summary>
    Device Device { get; }

    /// <summary>Width of the scores (the tokenizer's vocabulary when the model's logits are wider).</summary>
    int VocabSize { get; }

    /// <summary>Starts a batch: runs the whole left-padded input (prompt and forced prefix) and scores the next token of every row.</summary>
    /// <param name="inputIds">int64 <c>[batch, length]</c>, left padded.</param>
    /// <param name="attentionMask">int64 <c>[batch, length]</c>, 0 on padding.</param>
    /// <param name="context">Rows and response positions of the tokens about to be chosen.</param>
    /// <param name="maxNewTokens">Upper bound on the steps that will follow (to size caches).</param>
    /// <returns>float32 log-space scores <c>[batch, VocabSize]</c>.</returns>
    Tensor Prefill(Tensor inputIds, Tensor attentionMask, ScoringContext context, int maxNewTokens);

    /// <summary>Feeds one chosen token per active row and scores the next one.</summary>
    /// <param name="nextTokens">int64 <c>[activeRows, 1]</c>.</param>
    /// <param name="attentionMask">int64 <c>[activeRows, pastLength + 1]</c> covering all fed positions.</param>
    /// <param name="context">Rows and response positions of the tokens about to be chosen.</param>
    /// <returns>float32 log-space scores <c>[activeRows, VocabSize]</c>.</returns>
    Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context);

    /// <summary>Keeps only the given rows of the current batch, in order (called when rows finish).</summary>
    /// <param name="rows">Indices into the current (active) batch.</param>
    void SelectRows(IReadOnlyList<long> rows);

    /// <summary>Releases the batch state (caches) at the end of a generation call.</summary>
    void Reset();

    /// <summary>
    /// Optional per-row information about the step just scored, once the tokens are chosen (e.g. a contrastive
    /// trace). Returns null (the default) when there is nothing to report; otherwise one entry per active row.
    /// </summary>
    /// <param name="chosenTokens">The chosen id of every active row.</param>
    /// <returns>Per-row information, or null.</returns>
    IReadOnlyList<object?>? DescribeStep(IReadOnlyList<long> chosenTokens) => null;
}
