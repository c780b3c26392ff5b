using DeepAlign.Generation;
using DeepAlign.Models;
using Microsoft.Extensions.Logging;

namespace DeepAlign.Method.SafeDecoding;

/// <summary>
/// SafeDecoding (Xu et al., ACL 2024; docs/safedecoding.md) between the original model and a safety expert that share a
/// tokenizer: for the first m response tokens the next token is drawn from the smallest top-k intersection of both
/// models with at least c tokens, weighted by <c>p_orig + alpha (p_expert - p_orig)</c>; afterwards the original model
/// decodes alone. The usual temperature / top-k / top-p / sampling (or argmax) runs on the resulting scores.
/// </summary>
/// <remarks>
/// <para>The decoder is a <see cref="SafeDecodingScorer"/> driven by the ordinary <see cref="Generation.Generator"/>, so
/// everything the plain generator offers works the same way: batching with left padding, greedy and seeded sampling,
/// temperature/top-k/top-p (applied to the SafeDecoding scores), stop ids and <see cref="IStopCondition"/>s (stop
/// strings through <see cref="TextGenerator"/>), max tokens, forced response prefixes, token forcers, streaming and
/// cancellation. Defaults follow the original model: its <c>eos_token_id</c>s stop rows and its <c>pad_token_id</c>
/// pads. With m = 0 the output equals the original model's own <see cref="Generation.Generator"/> output exactly.</para>
/// <para>Cost per step: for the first m tokens one forward pass of each model on the active rows (each with its own KV
/// cache) plus two sorts over the vocabulary; afterwards one forward pass of the original model only. Like the
/// generator, a decoder serves one call at a time.</para>
/// </remarks>
public sealed class SafeDecoder : ScorerDecoder<SafeDecodingScorer>
{
    /// <summary>Creates a decoder (the models are not owned).</summary>
    /// <param name="original">The original model being defended; scores are combined on its device.</param>
    /// <param name="expert">The safety expert (a safety fine-tune of the original); may live on another device.</param>
    /// <param name="options">SafeDecoding options (validated); null for the defaults.</param>
    /// <param name="logger">Optional logger.</param>
    public SafeDecoder(ICausalLanguageModel original, ICausalLanguageModel expert, SafeDecodingOptions? options = null, ILogger? logger = null)
        : base(new SafeDecodingScorer(original, expert, options), original, logger)
    {
    }

    /// <summary>The validated options.</summary>
    public SafeDecodingOptions Options => Scorer.Options;

    /// <summary>The trace of the most recent call (see <see cref="SafeDecodingScorer.LastTrace"/>); null unless <see cref="SafeDecodingOptions.Trace"/> is on.</summary>
    public IReadOnlyList<IReadOnlyList<SafeDecodingTraceEntry>>? LastTrace => Scorer.LastTrace;
}
