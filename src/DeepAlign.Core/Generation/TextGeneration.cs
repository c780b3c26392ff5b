using DeepAlign.Text;

namespace DeepAlign.Generation;

/// <summary>One text-level request: the prompt text and an optional response prefix the model is forced to emit first.</summary>
/// <param name="Prompt">
/// The prompt text, encoded as is (render the chat template first, e.g. with <see cref="ChatTemplate.Render"/>; special
/// tokens written in the text are recognised).
/// </param>
public sealed record TextGenerationRequest(string Prompt)
{
    /// <summary>Response text forced before the model continues (prefilling); tokenized separately, without BOS (METHOD.md section 0).</summary>
    public string? ResponsePrefix { get; init; }

    /// <summary>Seed of this row's sampling draws; null derives one from <see cref="GenerationOptions.Seed"/> and the row index.</summary>
    public long? Seed { get; init; }
}

/// <summary>Options of a <see cref="TextGenerator"/> call: the id-level <see cref="GenerationOptions"/> plus stop strings and tokenizer flags.</summary>
public sealed record TextGenerationOptions
{
    /// <summary>Decoding options (greedy/sampling, max tokens, stop ids, seeds, ...). Default <see cref="GenerationOptions.Default"/>.</summary>
    public GenerationOptions Generation { get; init; } = GenerationOptions.Default;

    /// <summary>
    /// Strings that end a row as soon as the generated text (after the forced prefix) contains one; the returned text
    /// is cut before it. Empty by default.
    /// </summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();

    /// <summary>Whether the tokenizer adds its BOS/EOS around the prompt text (false by default: chat templates write BOS themselves).</summary>
    public bool AddSpecialTokens { get; init; }

    /// <summary>Whether special tokens (e.g. the end-of-turn id) are dropped from the returned text. Default true.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public TextGenerationOptions Validate()
    {
        if (Generation is null) throw new ArgumentException("TextGenerationOptions.Generation must not be null.", nameof(Generation));
        Generation.Validate();
        if (StopStrings is null) throw new ArgumentException("TextGenerationOptions.StopStrings must not be null (use an empty list).", nameof(StopStrings));
        foreach (var s in StopStrings)
            if (string.IsNullOrEmpty(s)) throw new ArgumentException("TextGenerationOptions.StopStrings must not contain null or empty strings.", nameof(StopStrings));
        return this;
    }
}

/// <summary>The outcome of one text-level request.</summary>
/// <param name="Index">Index of the request in the call.</param>
/// <param name="Text">The generated continuation after the forced prefix, cut before the first stop string.</param>
/// <param name="StopString">The stop string that ended the text, or null.</param>
/// <param name="Sequence">The id-level result (prompt, prefix and generated ids, finish reason).</param>
public sealed record TextGenerationResult(int Index, string Text, string? StopString, GeneratedSequence Sequence)
{
    /// <summary>Why the row stopped (a stop string gives <see cref="Generation.FinishReason.StopCondition"/>).</summary>
    public FinishReason FinishReason => Sequence.FinishReason;
}

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

/// <summary>
/// Stops a row once the text it generated after its forced prefix contains one of the stop strings (checked
/// incrementally with a <see cref="StreamingDetokenizer"/> and a <see cref="StopStringMatcher"/> per row, so a stop
/// string split across tokens is found). Use one instance per generation call.
/// </summary>
public sealed class StopStringCondition : IStopCondition
{
    private readonly ITextTokenizer _tokenizer;
    private readonly string[] _stopStrings;
    private readonly bool _skipSpecialTokens;
    private readonly Dictionary<int, RowState> _rows = new();

    /// <summary>Creates the condition.</summary>
    /// <param name="tokenizer">The tokenizer that decodes the generated ids.</param>
    /// <param name="stopStrings">Non-empty stop strings.</param>
    /// <param name="skipSpecialTokens">Whether special tokens are dropped from the text that is searched. Default true.</param>
    public StopStringCondition(ITextTokenizer tokenizer, IEnumerable<string> stopStrings, bool skipSpecialTokens = true)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        ArgumentNullException.ThrowIfNull(stopStrings);
        _stopStrings = stopStrings.ToArray();
        if (_stopStrings.Length == 0 || _stopStrings.Any(string.IsNullOrEmpty))
            throw new ArgumentException("At least one stop string is needed and none may be empty.", nameof(stopStrings));
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>The stop string that stopped <paramref name="row"/> in the current call, or null.</summary>
    /// <param name="row">Index of the request.</param>
    /// <returns>The matched stop string, or null.</returns>
    public string? MatchedStopString(int row) => _rows.TryGetValue(row, out var s) ? s.Matcher.MatchedStopString : null;

    /// <inheritdoc />
    public bool ShouldStop(int row, GenerationRequest request, IReadOnlyList<long> generatedIds)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(generatedIds);
        if (!_rows.TryGetValue(row, out var state) || generatedIds.Count <= state.Fed)
        {
            // A new row (or a new call reusing this instance): decode the prefix as context only.
            state = new RowState(new StreamingDetokenizer(_tokenizer, _skipSpecialTokens), new StopStringMatcher(_stopStrings));
            foreach (var id in request.ForcedPrefixIds) state.Detokenizer.Add((int)id);
            _rows[row] = state;
        }
        for (; state.Fed < generatedIds.Count; state.Fed++)
        {
            var delta = state.Detokenizer.Add((int)generatedIds[state.Fed]);
            if (delta.Length > 0) state.Matcher.Push(delta);
        }
        return state.Matcher.Stopped;
    }

    private sealed class RowState(StreamingDetokenizer detokenizer, StopStringMatcher matcher)
    {
        public StreamingDetokenizer Detokenizer { get; } = detokenizer;
        public StopStringMatcher Matcher { get; } = matcher;
        public int Fed { get; set; }
    }
}
