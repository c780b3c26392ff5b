using DeepAlign.Models;
using Microsoft.Extensions.Logging;

namespace DeepAlign.Generation;

/// <summary>
/// A decoder made of one <see cref="INextTokenScorer"/> driven by the ordinary <see cref="Generation.Generator"/>: the
/// shape of every decoding-time defense (contrastive decoding, SafeDecoding), so each offers what the plain generator
/// offers (batching, greedy and seeded sampling, forced prefixes, token forcers, stops, streaming, cancellation) without
/// a second decoding loop. Defaults follow the scorer's primary model: its <c>eos_token_id</c>s stop rows and its
/// <c>pad_token_id</c> pads. Like the generator, a decoder serves one call at a time.
/// </summary>
/// <typeparam name="TScorer">The scorer type.</typeparam>
public abstract class ScorerDecoder<TScorer> : IDisposable where TScorer : INextTokenScorer
{
    /// <summary>Wraps a scorer (owned: disposed with the decoder).</summary>
    /// <param name="scorer">The scorer.</param>
    /// <param name="primary">The model whose stop and pad ids the generator uses.</param>
    /// <param name="logger">Optional logger.</param>
    protected ScorerDecoder(TScorer scorer, ICausalLanguageModel primary, ILogger? logger)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(primary);
        Scorer = scorer;
        Generator = new Generator(scorer, primary.Config.EosTokenIds?.Select(i => (long)i).ToArray(), primary.Config.PadTokenId, ownsScorer: true, logger);
    }

    /// <summary>The scorer.</summary>
    public TScorer Scorer { get; }

    /// <summary>The generator that drives <see cref="Scorer"/>; wrap it in a <see cref="TextGenerator"/> for text in, text out.</summary>
    public Generator Generator { get; }

    /// <summary>Decodes a continuation for every request (see <see cref="Generation.Generator.Generate"/>).</summary>
    /// <param name="requests">The sequences (at least one).</param>
    /// <param name="options">Decoding options; temperature, top-k and top-p apply to the scorer's scores.</param>
    /// <param name="progress">Optional progress, reported after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<GenerationRequest> requests, GenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Generator.Generate(requests, options, progress, cancellationToken);

    /// <summary>Runs <see cref="Generate"/> on the thread pool.</summary>
    /// <param name="requests">The sequences (at least one).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public Task<IReadOnlyList<GeneratedSequence>> GenerateAsync(IReadOnlyList<GenerationRequest> requests, GenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Generator.GenerateAsync(requests, options, progress, cancellationToken);

    /// <summary>
    /// Streams the chosen tokens step by step (see <see cref="Generation.Generator.StreamAsync"/>); with the scorer's
    /// trace on, each token's <see cref="GeneratedToken.Info"/> is its trace entry.
    /// </summary>
    /// <param name="requests">The sequences (at least one).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One <see cref="GenerationStep"/> per decoding step.</returns>
    public IAsyncEnumerable<GenerationStep> StreamAsync(IReadOnlyList<GenerationRequest> requests, GenerationOptions? options = null,
        CancellationToken cancellationToken = default) =>
        Generator.StreamAsync(requests, options, cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        Generator.Dispose();
        GC.SuppressFinalize(this);
    }
}
