using DeepAlign.Generation;

namespace DeepAlign.Evaluation;

/// <summary>
/// Something the evaluation harness can attack: a way to answer a batch of requests. Defenses are evaluated side by
/// side under the same attacks, judges and utility metrics: the aligned model itself, a decoding-time defense (e.g.
/// contrastive decoding, as an <see cref="INextTokenScorer"/>), or a retrained model.
/// </summary>
/// <remarks>
/// The harness drives attacks through <see cref="GenerationOptions"/>: forced prefixes (prefilling), an
/// <see cref="ITokenForcer"/> (rank-assisted prefilling, and teacher forcing for perplexity: the forcer sees the
/// defense's scores), and the decoding parameters (the sweep). A defense must honour all of them; the simplest way is
/// to run a <see cref="Generator"/> over its scorer, as <see cref="ScorerDefense"/> does.
/// </remarks>
public interface IDefense : IDisposable
{
    /// <summary>Short name used in tables (e.g. <c>aligned</c>, <c>contrastive(alpha=1)</c>).</summary>
    string Name { get; }

    /// <summary>Generates a continuation for every request, honouring every field of <paramref name="options"/>.</summary>
    /// <param name="requests">The requests (prompt ids and optional forced prefixes).</param>
    /// <param name="options">Decoding options (sampling, seed, token forcer, stops).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<GenerationRequest> requests, GenerationOptions options, CancellationToken cancellationToken = default);
}
