using DeepAlign.Text;

namespace DeepAlign.Generation;

/// <summary>
/// Text in, text out over any <see cref="Generator"/> (the plain one or a contrastive decoder's): encodes prompts
/// and response prefixes with an <see cref="ITextTokenizer"/>, stops rows on stop strings, and decodes the
/// continuations. All decoding happens in the wrapped generator.
/// </summary>
public sealed class TextGenerator
{
    /// <summary>Creates the text layer over <paramref name="generator"/> (not owned).</summary>
    /// <param name="generator">The generator.</param>
    /// <param name="tokenizer">The tokenizer shared by the generator's model(s).</param>
    public TextGenerator(Generator generator, ITextTokenizer tokenizer)
    {
        Generator = generator ?? throw new ArgumentNullException(nameof(generator));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
    }

    /// <summary>The wrapped generator.</summary>
    public Generator Generator { get; }

    /// <summary>The tokenizer.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>Encodes a text request: the prompt (with BOS/EOS when <paramref name="addSpecialTokens"/>) and the prefix (never with special tokens).</summary>
    /// <param name="request">The request.</param>
    /// <param name="addSpecialTokens">Whether to add the tokenizer's special tokens around the prompt.</param>
    /// <returns>The id-level request.</returns>
    public GenerationRequest Encode(TextGenerationRequest request, bool addSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Prompt is null) throw new ArgumentException("TextGenerationRequest.Prompt must not be null.", nameof(request));
        var prompt = Tokenizer.Encode(request.Prompt, addSpecialTokens).Select(i => (long)i).ToArray();
        var prefix = string.IsNullOrEmpty(request.ResponsePrefix)
            ? Array.Empty<long>()
            : Tokenizer.Encode(request.ResponsePrefix, addSpecialTokens: false).Select(i => (long)i).ToArray();
        return new GenerationRequest(prompt) { ForcedPrefixIds = prefix, Seed = request.Seed };
    }

    /// <summary>Generates a text continuation for every text request.</summary>
    /// <param name="requests">The requests (at least one).</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <param name="progress">Optional progress, reported after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public IReadOnlyList<TextGenerationResult> Generate(
        IReadOnlyList<TextGenerationRequest> requests,
        TextGenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        options = (options ?? new TextGenerationOptions()).Validate();
        var encoded = requests.Select((r, i) => Encode(r ?? throw new ArgumentException($"Request {i} is null.", nameof(requests)), options.AddSpecialTokens)).ToArray();
        return Generate(encoded, options, progress, cancellationToken);
    }

    /// <summary>Generates for id-level requests and decodes the continuations, honouring the stop strings.</summary>
    /// <param name="requests">The requests (at least one).</param>
    /// <param name="options">Options; null for the defaults (<see cref="TextGenerationOptions.AddSpecialTokens"/> is not used here).</param>
    /// <param name="progress">Optional progress, reported after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public IReadOnlyList<TextGenerationResult> Generate(
        IReadOnlyList<GenerationRequest> requests,
        TextGenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        options = (options ?? new TextGenerationOptions()).Validate();
        var generation = options.Generation;
        if (options.StopStrings.Count > 0)
            generation = generation with
            {
                StopConditions = generation.StopConditions
                    .Append(new StopStringCondition(Tokenizer, options.StopStrings, options.SkipSpecialTokens)).ToArray(),
            };
        var sequences = Generator.Generate(requests, generation, progress, cancellationToken);
        return sequences.Select(s => ToResult(s, options)).ToArray();
    }

    /// <summary>Runs <see cref="Generate(IReadOnlyList{TextGenerationRequest}, TextGenerationOptions?, IProgress{GenerationProgress}?, CancellationToken)"/> on the thread pool.</summary>
    /// <param name="requests">The requests (at least one).</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <param name="progress">Optional progress.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public Task<IReadOnlyList<TextGenerationResult>> GenerateAsync(
        IReadOnlyList<TextGenerationRequest> requests,
        TextGenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Generate(requests, options, progress, cancellationToken), cancellationToken);

    /// <summary>
    /// The continuation text of a sequence: the decode of prefix + generated ids minus the decode of the prefix (so a
    /// SentencePiece leading space is kept), cut before the earliest stop string.
    /// </summary>
    /// <param name="sequence">An id-level result.</param>
    /// <param name="options">Options (stop strings, special-token skipping).</param>
    /// <returns>The text result.</returns>
    public TextGenerationResult ToResult(GeneratedSequence sequence, TextGenerationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        options ??= new TextGenerationOptions();
        var text = ContinuationText(Tokenizer, sequence.ForcedPrefixIds, sequence.GeneratedIds, options.SkipSpecialTokens);
        string? stop = null;
        if (options.StopStrings.Count > 0)
        {
            var matcher = new StopStringMatcher(options.StopStrings);
            matcher.Push(text);
            if (matcher.Stopped)
            {
                stop = matcher.MatchedStopString;
                text = text[..matcher.StopIndex!.Value];
            }
        }
        return new TextGenerationResult(sequence.Index, text, stop, sequence);
    }

    internal static string ContinuationText(ITextTokenizer tokenizer, IReadOnlyList<long> prefix, IReadOnlyList<long> generated, bool skipSpecialTokens)
    {
        var gen = generated.Select(i => (int)i).ToArray();
        if (prefix.Count == 0) return tokenizer.Decode(gen, skipSpecialTokens);
        var pre = prefix.Select(i => (int)i).ToArray();
        var prefixText = tokenizer.Decode(pre, skipSpecialTokens);
        var full = tokenizer.Decode(pre.Concat(gen), skipSpecialTokens);
        return full.StartsWith(prefixText, StringComparison.Ordinal) ? full[prefixText.Length..] : tokenizer.Decode(gen, skipSpecialTokens);
    }
}
