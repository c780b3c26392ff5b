using DeepAlign.Generation;
using DeepAlign.Models;

namespace DeepAlign.Evaluation;

/// <summary>A defense that decodes with a <see cref="Generator"/> over an <see cref="INextTokenScorer"/>.</summary>
public sealed class ScorerDefense : IDefense
{
    private readonly Generator _generator;
    private readonly IDisposable? _owned;

    /// <summary>Creates the defense.</summary>
    /// <param name="name">Name in tables.</param>
    /// <param name="scorer">The scorer (a <see cref="ModelScorer"/>, a contrastive decoder, ...).</param>
    /// <param name="stopTokenIds">Ids that end an answer (the end-of-turn id).</param>
    /// <param name="padTokenId">Id written into left padding.</param>
    /// <param name="owned">Disposed with the defense (e.g. the scorer and its models), or null.</param>
    public ScorerDefense(string name, INextTokenScorer scorer, IReadOnlyList<long> stopTokenIds, long padTokenId, IDisposable? owned = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(scorer);
        Name = name;
        _generator = new Generator(scorer, stopTokenIds, padTokenId, ownsScorer: false);
        _owned = owned;
    }

    /// <summary>A defense that is one model decoding on its own (e.g. the aligned model, or a retrained one).</summary>
    /// <param name="name">Name in tables.</param>
    /// <param name="model">The model (owned only when <paramref name="ownsModel"/>).</param>
    /// <param name="vocabSize">Tokenizer vocabulary size when the logits are wider.</param>
    /// <param name="ownsModel">Dispose the model with the defense.</param>
    public static ScorerDefense ForModel(string name, ICausalLanguageModel model, int? vocabSize = null, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var scorer = new ModelScorer(model, vocabSize);
        var stops = model.Config.EosTokenIds?.Select(i => (long)i).ToArray() ?? Array.Empty<long>();
        return new ScorerDefense(name, scorer, stops, model.Config.PadTokenId ?? 0, new Owned(scorer, ownsModel ? model : null));
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<GenerationRequest> requests, GenerationOptions options, CancellationToken cancellationToken = default) =>
        _generator.Generate(requests, options, null, cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        _generator.Dispose();
        _owned?.Dispose();
    }

    private sealed class Owned(IDisposable first, IDisposable? second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second?.Dispose();
        }
    }
}
