using DeepAlign.Generation;
using DeepAlign.Models;
using Microsoft.Extensions.Logging;

namespace DeepAlign.Method.Contrastive;

/// <summary>
/// Contrastive decoding between an aligned (expert) and a base (amateur) model that share a tokenizer
/// (docs/method.md section 2): at each step j the aligned model's log-probabilities l_a are pushed away from the base's
/// l_b with strength alpha_j ("full" or "base-favored only" rule) inside the plausibility set P_j, and the usual
/// temperature / top-k / top-p / sampling (or argmax) runs on the result.
/// </summary>
/// <remarks>
/// <para>The decoder is a <see cref="ContrastiveScorer"/> driven by the ordinary <see cref="Generation.Generator"/>, so
/// everything the plain generator offers works the same way: batching with left padding, greedy and seeded sampling,
/// temperature/top-k/top-p (applied to the contrastive scores), stop ids and <see cref="IStopCondition"/>s (stop
/// strings through <see cref="TextGenerator"/>), max tokens, forced response prefixes, token forcers, streaming and
/// cancellation. Defaults follow the aligned model: its <c>eos_token_id</c>s stop rows and its <c>pad_token_id</c>
/// pads. With alpha = 0 and beta_cd = 0 the output equals the aligned model's own <see cref="Generation.Generator"/>
/// output exactly.</para>
/// <para>Cost per step: one forward pass of each model on the active rows (each with its own KV cache) plus a few
/// element-wise operations over the vocabulary. Like the generator, a decoder serves one call at a time.</para>
/// </remarks>
public sealed class ContrastiveDecoder : ScorerDecoder<ContrastiveScorer>
{
    /// <summary>Creates a decoder (the models are not owned).</summary>
    /// <param name="aligned">The aligned (expert) model pi_a; scores are combined on its device.</param>
    /// <param name="baseModel">The base (amateur) model pi_b; may live on another device.</param>
    /// <param name="options">Contrastive options (validated); null for the defaults.</param>
    /// <param name="logger">Optional logger.</param>
    public ContrastiveDecoder(ICausalLanguageModel aligned, ICausalLanguageModel baseModel, ContrastiveDecoderOptions? options = null, ILogger? logger = null)
        : base(new ContrastiveScorer(aligned, baseModel, options), aligned, logger)
    {
    }

    /// <summary>The validated options.</summary>
    public ContrastiveDecoderOptions Options => Scorer.Options;

    /// <summary>The trace of the most recent call (see <see cref="ContrastiveScorer.LastTrace"/>); null unless <see cref="ContrastiveDecoderOptions.Trace"/> is on.</summary>
    public IReadOnlyList<IReadOnlyList<ContrastiveTraceEntry>>? LastTrace => Scorer.LastTrace;
}
