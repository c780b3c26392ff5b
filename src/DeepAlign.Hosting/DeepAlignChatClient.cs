using System.Runtime.CompilerServices;
using DeepAlign.Generation;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using GenerationFinishReason = DeepAlign.Generation.FinishReason;

namespace DeepAlign.Hosting;

/// <summary>
/// An <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a loaded causal language model, its Hugging Face
/// tokenizer and chat template, driven by the shared <see cref="Generation.Generator"/>. With
/// <see cref="CreateContrastive"/> the scorer is a <see cref="ContrastiveScorer"/>, so contrastive decoding (docs/method.md
/// section 2) sits behind the same interface.
/// </summary>
/// <remarks>
/// <para>A request's messages (roles system, user, assistant; text content only) are rendered with the chat template
/// and the generation prompt, exactly as <see cref="ConversationEncoder.EncodePrompt"/> does. When the last message is
/// an assistant message its text becomes a forced response prefix (prefilling): the model continues it, and the
/// response holds only the continuation.</para>
/// <para>Per-request <see cref="ChatOptions"/> map as follows: <see cref="ChatOptions.MaxOutputTokens"/> caps the
/// generated tokens (default <see cref="DeepAlignChatClientOptions.DefaultMaxOutputTokens"/>);
/// <see cref="ChatOptions.Temperature"/> = 0 or unset means greedy decoding, a positive temperature samples (so do
/// <see cref="ChatOptions.TopP"/> or <see cref="ChatOptions.TopK"/> given without a temperature, at temperature 1);
/// <see cref="ChatOptions.Seed"/> seeds the draws; <see cref="ChatOptions.StopSequences"/> are stop strings (the
/// returned text is cut before them); <see cref="ChatOptions.Instructions"/> become a system message. Options this
/// client cannot honour (JSON <see cref="ChatOptions.ResponseFormat"/>, tools, frequency/presence penalties,
/// reasoning, server-side conversations, continuation tokens, another model id) throw
/// <see cref="NotSupportedException"/> instead of being ignored.</para>
/// <para>Responses report <see cref="ChatFinishReason.Stop"/> (end-of-turn token or stop string) or
/// <see cref="ChatFinishReason.Length"/>, and <see cref="UsageDetails"/> with the prompt (plus forced prefix) and
/// generated token counts. Streaming yields one update per decoded text delta (never a broken UTF-8 sequence, see
/// <see cref="StreamingDetokenizer"/>), then a final update with the finish reason and a <see cref="UsageContent"/>.</para>
/// <para>The generator serves one call at a time; this client serializes calls with a semaphore, so concurrent
/// callers wait their turn (a streaming call holds its turn until the stream ends or is disposed).</para>
/// </remarks>
public sealed class DeepAlignChatClient : IChatClient
{
    /// <summary>The provider name reported in <see cref="ChatClientMetadata.ProviderName"/>.</summary>
    public const string ProviderName = "DeepAlign";

    private readonly bool _ownsGenerator;
    private readonly ConversationEncoder _encoder;
    private readonly TextGenerator _text;
    private readonly IReadOnlyList<long> _stopTokenIds;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ILogger _logger;
    private int _disposed;

    /// <summary>Creates a chat client over an existing generator (plain or contrastive).</summary>
    /// <param name="generator">The generator; disposed with the client only when <paramref name="ownsGenerator"/> is true.</param>
    /// <param name="tokenizer">The tokenizer of the generator's model(s).</param>
    /// <param name="template">The chat template (e.g. <see cref="ChatTemplate.For"/>).</param>
    /// <param name="options">Client settings; null for the defaults.</param>
    /// <param name="logger">Optional logger (default <see cref="NullLogger.Instance"/>).</param>
    /// <param name="ownsGenerator">Whether <see cref="Dispose"/> disposes <paramref name="generator"/>.</param>
    /// <exception cref="ArgumentException">Invalid options, or the template's end-of-turn token is not in the tokenizer.</exception>
    public DeepAlignChatClient(
        Generator generator,
        ITextTokenizer tokenizer,
        ChatTemplate template,
        DeepAlignChatClientOptions? options = null,
        ILogger? logger = null,
        bool ownsGenerator = false)
        : this(generator, tokenizer, template, options, logger, ownsGenerator, extraStopTokenIds: null)
    {
    }

    private DeepAlignChatClient(
        Generator generator,
        ITextTokenizer tokenizer,
        ChatTemplate template,
        DeepAlignChatClientOptions? options,
        ILogger? logger,
        bool ownsGenerator,
        IEnumerable<long>? extraStopTokenIds)
    {
        Generator = generator ?? throw new ArgumentNullException(nameof(generator));
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Template = template ?? throw new ArgumentNullException(nameof(template));
        Options = (options ?? new DeepAlignChatClientOptions()).Validate();
        _ownsGenerator = ownsGenerator;
        _logger = logger ?? NullLogger.Instance;
        _encoder = new ConversationEncoder(tokenizer, template);
        _text = new TextGenerator(generator, tokenizer);
        _stopTokenIds = Options.StopTokenIds?.ToArray() ?? DefaultStopTokenIds(tokenizer, _encoder.EndOfTurnId, extraStopTokenIds);
        Metadata = new ChatClientMetadata(ProviderName, providerUri: null, defaultModelId: ModelId);
    }

    /// <summary>Creates a chat client that decodes with one model (the client owns the generator it builds, not the model).</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer (logits wider than <see cref="ITextTokenizer.VocabSize"/> are cut to it).</param>
    /// <param name="template">Its chat template.</param>
    /// <param name="options">Client settings; null for the defaults.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The client; dispose it to release the generator.</returns>
    public static DeepAlignChatClient Create(
        ICausalLanguageModel model,
        ITextTokenizer tokenizer,
        ChatTemplate template,
        DeepAlignChatClientOptions? options = null,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var generator = new Generator(model, VocabCut(model, tokenizer), logger);
        try
        {
            return new DeepAlignChatClient(generator, tokenizer, template, options, logger, ownsGenerator: true,
                model.Config.EosTokenIds?.Select(i => (long)i));
        }
        catch
        {
            generator.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates a chat client that decodes contrastively between an aligned and a base model sharing
    /// <paramref name="tokenizer"/> (<see cref="ContrastiveScorer"/> driven by the shared generator). Neither model is owned.
    /// </summary>
    /// <param name="aligned">The aligned (expert) model.</param>
    /// <param name="baseModel">The base (amateur) model.</param>
    /// <param name="tokenizer">The shared tokenizer; when <see cref="ContrastiveDecoderOptions.VocabSize"/> is null and the logits are wider, they are cut to it.</param>
    /// <param name="template">The aligned model's chat template.</param>
    /// <param name="contrastive">Contrastive options (docs/method.md defaults when null).</param>
    /// <param name="options">Client settings; null for the defaults.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The client; dispose it to release the decoder.</returns>
    public static DeepAlignChatClient CreateContrastive(
        ICausalLanguageModel aligned,
        ICausalLanguageModel baseModel,
        ITextTokenizer tokenizer,
        ChatTemplate template,
        ContrastiveDecoderOptions? contrastive = null,
        DeepAlignChatClientOptions? options = null,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(aligned);
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(tokenizer);
        contrastive ??= new ContrastiveDecoderOptions();
        if (contrastive.VocabSize is null && (tokenizer.VocabSize < aligned.VocabSize || tokenizer.VocabSize < baseModel.VocabSize))
            contrastive = contrastive with { VocabSize = tokenizer.VocabSize };
        var decoder = new ContrastiveDecoder(aligned, baseModel, contrastive, logger);
        try
        {
            return new DeepAlignChatClient(decoder.Generator, tokenizer, template, options, logger, ownsGenerator: true,
                aligned.Config.EosTokenIds?.Select(i => (long)i));
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
    }

    /// <summary>The generator that decodes every request.</summary>
    public Generator Generator { get; }

    /// <summary>The tokenizer.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>The chat template.</summary>
    public ChatTemplate Template { get; }

    /// <summary>The validated client settings.</summary>
    public DeepAlignChatClientOptions Options { get; }

    /// <summary>The model id reported with every response.</summary>
    public string ModelId => Options.ModelId ?? "deepalign";

    /// <summary>Provider name "DeepAlign" and <see cref="ModelId"/>.</summary>
    public ChatClientMetadata Metadata { get; }

    /// <summary>The token ids that end the assistant turn.</summary>
    public IReadOnlyList<long> StopTokenIds => _stopTokenIds;

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(
        IEnumerable<AIChatMessage> messages,
        ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var prepared = Prepare(messages, options);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            var result = await Task.Run(
                () => _text.Generate(new[] { prepared.Request }, prepared.Options, null, cancellationToken)[0],
                cancellationToken).ConfigureAwait(false);
            var sequence = result.Sequence;
            _logger.LogDebug("Chat response: {Output} tokens after a {Input}-token prompt, finish {Finish}.",
                sequence.GeneratedIds.Count, prepared.InputTokenCount, sequence.FinishReason);
            string responseId = NewId();
            return new ChatResponse(new AIChatMessage(ChatRole.Assistant, result.Text) { MessageId = responseId })
            {
                ResponseId = responseId,
                ModelId = ModelId,
                CreatedAt = DateTimeOffset.UtcNow,
                FinishReason = MapFinishReason(sequence.FinishReason),
                Usage = Usage(prepared.InputTokenCount, sequence.GeneratedIds.Count),
                RawRepresentation = result,
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<AIChatMessage> messages,
        ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prepared = Prepare(messages, options);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            var textOptions = prepared.Options;
            var generation = textOptions.Generation;
            if (textOptions.StopStrings.Count > 0)
                generation = generation with
                {
                    StopConditions = generation.StopConditions
                        .Append(new StopStringCondition(Tokenizer, textOptions.StopStrings, textOptions.SkipSpecialTokens)).ToArray(),
                };
            var text = new ContinuationStream(Tokenizer, prepared.Request.ForcedPrefixIds, textOptions.StopStrings, textOptions.SkipSpecialTokens);
            string responseId = NewId();
            var createdAt = DateTimeOffset.UtcNow;
            ChatResponseUpdate Update(IList<AIContent> contents) => new(ChatRole.Assistant, contents)
            {
                ResponseId = responseId,
                MessageId = responseId,
                ModelId = ModelId,
                CreatedAt = createdAt,
            };

            int generated = 0;
            GenerationFinishReason? finish = null;
            var steps = Generator.StreamAsync(new[] { prepared.Request }, generation, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                // Each step runs whole on one pool thread (its dispose scope and no-grad mode never cross an await).
                while (await Task.Run(() => steps.MoveNextAsync().AsTask(), cancellationToken).ConfigureAwait(false))
                {
                    var token = steps.Current.Tokens[0];
                    generated++;
                    finish = token.FinishReason ?? finish;
                    var delta = text.Add(token.TokenId);
                    if (delta.Length > 0) yield return Update(new List<AIContent> { new TextContent(delta) });
                }
            }
            finally
            {
                await steps.DisposeAsync().ConfigureAwait(false);
            }

            var tail = text.Finish();
            if (tail.Length > 0) yield return Update(new List<AIContent> { new TextContent(tail) });
            var final = Update(new List<AIContent> { new UsageContent(Usage(prepared.InputTokenCount, generated)) });
            final.FinishReason = MapFinishReason(finish ?? throw new InvalidOperationException("The generator ended without a finish reason."));
            _logger.LogDebug("Chat stream: {Output} tokens after a {Input}-token prompt, finish {Finish}.", generated, prepared.InputTokenCount, finish);
            yield return final;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Returns <see cref="Metadata"/> for <see cref="ChatClientMetadata"/>, this client, its <see cref="Generator"/>,
    /// the generator's scorer (e.g. <see cref="ContrastiveScorer"/>), the tokenizer or the chat template when asked for
    /// a type they are; null otherwise and for any <paramref name="serviceKey"/>.
    /// </summary>
    /// <param name="serviceType">The requested type.</param>
    /// <param name="serviceKey">A key; this client has no keyed services.</param>
    /// <returns>The service, or null.</returns>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return Metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(Generator)) return Generator;
        if (serviceType.IsInstanceOfType(Generator.Scorer)) return Generator.Scorer;
        if (serviceType.IsInstanceOfType(Tokenizer)) return Tokenizer;
        if (serviceType.IsInstanceOfType(Template)) return Template;
        return null;
    }

    /// <summary>Disposes the generator when the client owns it (never the models). Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (_ownsGenerator) Generator.Dispose();
        _gate.Dispose();
    }

    internal sealed record PreparedRequest(GenerationRequest Request, TextGenerationOptions Options)
    {
        public int InputTokenCount => Request.PromptIds.Count + Request.ForcedPrefixIds.Count;
    }

    /// <summary>Maps messages and options to an id-level request (everything that can fail does so here, before generation).</summary>
    internal PreparedRequest Prepare(IEnumerable<AIChatMessage> messages, ChatOptions? options)
    {
        ThrowIfDisposed();
        var textOptions = ChatOptionsMapping.ToTextGenerationOptions(options, Options.DefaultMaxOutputTokens, _stopTokenIds, ModelId);
        var (conversation, prefix) = ChatOptionsMapping.ToConversation(messages, options?.Instructions);
        var promptIds = _encoder.EncodePrompt(conversation).Select(i => (long)i).ToArray();
        var prefixIds = string.IsNullOrEmpty(prefix)
            ? Array.Empty<long>()
            : Tokenizer.Encode(prefix, addSpecialTokens: false).Select(i => (long)i).ToArray();
        return new PreparedRequest(new GenerationRequest(promptIds) { ForcedPrefixIds = prefixIds }, textOptions);
    }

    internal static ChatFinishReason MapFinishReason(GenerationFinishReason reason) => reason switch
    {
        GenerationFinishReason.StopToken or GenerationFinishReason.StopCondition => ChatFinishReason.Stop,
        GenerationFinishReason.MaxNewTokens => ChatFinishReason.Length,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "Unknown finish reason."),
    };

    private static UsageDetails Usage(int input, int output) => new()
    {
        InputTokenCount = input,
        OutputTokenCount = output,
        TotalTokenCount = input + output,
    };

    private static string NewId() => "deepalign-" + Guid.NewGuid().ToString("N");

    private static int? VocabCut(ICausalLanguageModel model, ITextTokenizer tokenizer) =>
        tokenizer.VocabSize < model.VocabSize ? tokenizer.VocabSize : null;

    private static long[] DefaultStopTokenIds(ITextTokenizer tokenizer, int? endOfTurnId, IEnumerable<long>? extra)
    {
        var ids = new SortedSet<long>(tokenizer.EosTokenIds.Select(i => (long)i));
        if (endOfTurnId is int eot) ids.Add(eot);
        if (extra is not null) ids.UnionWith(extra);
        return ids.ToArray();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
}

/// <summary>
/// The visible text of one streamed continuation: generated ids go through a <see cref="StreamingDetokenizer"/> primed
/// with the forced prefix (whose own text is not shown) and a <see cref="StopStringMatcher"/>, so the concatenated
/// deltas equal <see cref="TextGenerator"/>'s non-streaming text for the same ids.
/// </summary>
internal sealed class ContinuationStream
{
    private readonly StreamingDetokenizer _detokenizer;
    private readonly StopStringMatcher _stops;
    private readonly int _skip;
    private int _seen;

    public ContinuationStream(ITextTokenizer tokenizer, IReadOnlyList<long> prefixIds, IEnumerable<string> stopStrings, bool skipSpecialTokens)
    {
        _detokenizer = new StreamingDetokenizer(tokenizer, skipSpecialTokens);
        _stops = new StopStringMatcher(stopStrings);
        if (prefixIds.Count > 0)
        {
            // The prefix's decoded text is context, not output: drop that many leading characters of the stream.
            _skip = tokenizer.Decode(prefixIds.Select(i => (int)i), skipSpecialTokens).Length;
            foreach (var id in prefixIds) _seen += _detokenizer.Add((int)id).Length;
        }
    }

    /// <summary>Feeds one generated id; returns the newly visible text.</summary>
    public string Add(long id) => Visible(_detokenizer.Add((int)id));

    /// <summary>Ends the stream; returns the remaining visible text.</summary>
    public string Finish()
    {
        if (_stops.Stopped) return "";
        var tail = Visible(_detokenizer.Flush());
        return tail + _stops.Flush();
    }

    private string Visible(string delta)
    {
        int start = _seen;
        _seen += delta.Length;
        if (_seen <= _skip) return "";
        return _stops.Push(start >= _skip ? delta : delta[(_skip - start)..]);
    }
}
