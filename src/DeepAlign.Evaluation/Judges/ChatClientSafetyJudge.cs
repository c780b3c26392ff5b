using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using DeepAlign.Data;
using DeepAlign.Runtime;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace DeepAlign.Evaluation.Judges;

/// <summary>
/// An LLM judge over any Microsoft.Extensions.AI <see cref="IChatClient"/> (Ollama through OllamaSharp, OpenAI, Azure,
/// or DeepAlign's own <c>DeepAlignChatClient</c>): each (prompt, response) pair is rendered into the template's
/// messages (<see cref="ChatJudgeTemplate.HarmBench"/> by default, or <see cref="ChatJudgeTemplate.StrongReject"/>, or a
/// custom one), sent at temperature 0, and the answer is read strictly (<see cref="ChatJudgeOutputFormat"/>): an answer
/// that does not follow the format is <see cref="SafetyVerdict.Unparseable"/>, counted as its own outcome, never guessed.
/// </summary>
/// <remarks>
/// <para>Answers are cached in memory by the SHA-256 of (template texts and id, output token limit, model id, prompt,
/// response), and optionally in a JSONL file (<see cref="ChatClientSafetyJudgeOptions.CacheFile"/>); the cache keeps the
/// raw answers, so a cached answer is parsed again (e.g. under another StrongREJECT threshold). Identical pairs within
/// one batch are asked once. Unparseable answers are cached too: at temperature 0 asking again would mostly repeat them.</para>
/// <para>At most <see cref="ChatClientSafetyJudgeOptions.MaxConcurrency"/> requests are in flight. A transient error is
/// retried with exponential backoff; when the retries are used up the batch fails with
/// <see cref="JudgeRetriesExhaustedException"/> (the answers obtained so far stay cached). Cancellation propagates as
/// <see cref="OperationCanceledException"/>.</para>
/// <para>Thread-safe. Deterministic as far as the model is (temperature 0; remote models may still vary between calls,
/// which the cache hides within a run). The synchronous <see cref="Judge"/> and <see cref="JudgeBatch"/> (used by the
/// evaluator) block on the asynchronous calls.</para>
/// </remarks>
public sealed class ChatClientSafetyJudge : IBatchSafetyJudge
{
    private const string KeyVersion = "deepalign.chat-judge/1";
    private const long MaxCacheFileBytes = 1L << 30;

    private readonly SemaphoreSlim _gate;
    private readonly ConcurrentDictionary<string, CacheEntry> _cache = new(StringComparer.Ordinal);
    private readonly Func<Exception, bool> _isTransient;
    private readonly object _flushGate = new();
    private readonly int _maxOutputTokens;
    private int _dirty;
    private long _requests, _cacheHits, _retries;

    /// <summary>Creates the judge; reads <see cref="ChatClientSafetyJudgeOptions.CacheFile"/> when it exists.</summary>
    /// <param name="client">The chat client (not owned: the caller disposes it).</param>
    /// <param name="options">Settings; null: the defaults (HarmBench prompt, 4 requests at once, 3 retries).</param>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="JudgeCacheFormatException">The cache file is malformed (the message names the line).</exception>
    public ChatClientSafetyJudge(IChatClient client, ChatClientSafetyJudgeOptions? options = null)
    {
        Client = client ?? throw new ArgumentNullException(nameof(client));
        Options = (options ?? new ChatClientSafetyJudgeOptions()).Validate();
        _gate = new SemaphoreSlim(Options.MaxConcurrency, Options.MaxConcurrency);
        _isTransient = Options.IsTransient ?? DefaultIsTransient;
        _maxOutputTokens = Options.MaxOutputTokens ?? Options.Template.MaxOutputTokens;
        ModelId = Options.ModelId ?? client.GetService<ChatClientMetadata>()?.DefaultModelId ?? "";
        if (Options.CacheFile is { } file && File.Exists(file)) Load(file);
    }

    /// <summary>The chat client.</summary>
    public IChatClient Client { get; }

    /// <summary>The options in use.</summary>
    public ChatClientSafetyJudgeOptions Options { get; }

    /// <summary>The model id in the cache key: <see cref="ChatClientSafetyJudgeOptions.ModelId"/>, else the client's
    /// default model id (<see cref="ChatClientMetadata.DefaultModelId"/>), else empty.</summary>
    public string ModelId { get; }

    /// <summary>Requests sent to the client so far (retries included).</summary>
    public long ClientRequests => Interlocked.Read(ref _requests);

    /// <summary>Judgements served without a request (from the cache, or a duplicate pair in the same batch).</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);

    /// <summary>Retries made after transient errors.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Answers in the cache (those read from the cache file included).</summary>
    public int CachedAnswers => _cache.Count;

    /// <inheritdoc />
    /// <exception cref="JudgeRetriesExhaustedException">The client failed on every attempt.</exception>
    public SafetyJudgement Judge(DatasetRecord item, string response) =>
        Task.Run(() => JudgeAsync(item, response)).GetAwaiter().GetResult();

    /// <inheritdoc />
    /// <exception cref="JudgeRetriesExhaustedException">The client failed on every attempt for one of the responses.</exception>
    public IReadOnlyList<SafetyJudgement> JudgeBatch(IReadOnlyList<DatasetRecord> items, IReadOnlyList<string> responses, CancellationToken cancellationToken = default) =>
        Task.Run(() => JudgeManyAsync(items, responses, cancellationToken), cancellationToken).GetAwaiter().GetResult();

    /// <summary>Judges one response (a batch of one).</summary>
    /// <param name="item">The prompt's record (its <see cref="DatasetRecord.UserPrompt"/> fills the prompt placeholder).</param>
    /// <param name="response">The judged text.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="JudgeRetriesExhaustedException">The client failed on every attempt.</exception>
    public async Task<SafetyJudgement> JudgeAsync(DatasetRecord item, string response, CancellationToken cancellationToken = default) =>
        (await JudgeManyAsync([item ?? throw new ArgumentNullException(nameof(item))], [response ?? throw new ArgumentNullException(nameof(response))], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Judges every response, asking the client only for pairs not in the cache (each distinct pair once), at most
    /// <see cref="ChatClientSafetyJudgeOptions.MaxConcurrency"/> at a time; then writes the cache file (also when the
    /// batch fails or is cancelled, so answers obtained are kept).
    /// </summary>
    /// <param name="items">The prompts' records.</param>
    /// <param name="responses">One judged text per record.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>One judgement per response, in input order.</returns>
    /// <exception cref="ArgumentException">The lists differ in length.</exception>
    /// <exception cref="JudgeRetriesExhaustedException">The client failed on every attempt for one of the responses (the
    /// other requests are cancelled).</exception>
    public async Task<IReadOnlyList<SafetyJudgement>> JudgeManyAsync(IReadOnlyList<DatasetRecord> items, IReadOnlyList<string> responses, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(responses);
        if (items.Count != responses.Count) throw new ArgumentException($"{items.Count} items but {responses.Count} responses.", nameof(responses));
        var keys = new string[items.Count];
        var missing = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(items[i], $"{nameof(items)}[{i}]");
            ArgumentNullException.ThrowIfNull(responses[i], $"{nameof(responses)}[{i}]");
            keys[i] = Key(items[i].UserPrompt, responses[i]);
            if (_cache.ContainsKey(keys[i]) || !missing.TryAdd(keys[i], i)) Interlocked.Increment(ref _cacheHits);
        }
        if (missing.Count > 0)
        {
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var tasks = missing.Select(m => FetchAsync(m.Key, items[m.Value], responses[m.Value], failed)).ToList();
            try
            {
                await Task.WhenAll(tasks).ConfigureAwait(false);
            }
            catch when (!cancellationToken.IsCancellationRequested)
            {
                // Report the error that stopped the batch, not a sibling's cancellation.
                var cause = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException!).FirstOrDefault(e => e is not OperationCanceledException);
                if (cause is not null) ExceptionDispatchInfo.Capture(cause).Throw();
                throw;
            }
            finally
            {
                FlushCache();
            }
        }
        var result = new SafetyJudgement[items.Count];
        for (int i = 0; i < items.Count; i++) result[i] = Parse(_cache[keys[i]].Output);
        return result;
    }

    /// <summary>Reads one raw answer of the judge model under this judge's template and threshold.</summary>
    /// <param name="output">The judge model's answer text.</param>
    public SafetyJudgement Parse(string output) => ChatJudgeParser.Parse(Options.Template, output, Options.StrongRejectThreshold);

    /// <summary>The messages sent for one pair: the template's system message (if any) and the rendered user message.</summary>
    /// <param name="prompt">The harmful prompt.</param>
    /// <param name="response">The judged response.</param>
    public IReadOnlyList<AIChatMessage> Messages(string prompt, string response)
    {
        var user = new AIChatMessage(ChatRole.User, Options.Template.RenderUserPrompt(prompt, response));
        return Options.Template.SystemPrompt is { } system ? [new AIChatMessage(ChatRole.System, system), user] : [user];
    }

    /// <summary>Writes the cache file (atomically, sorted by key) if answers were added since the last write; no-op
    /// without <see cref="ChatClientSafetyJudgeOptions.CacheFile"/>.</summary>
    public void FlushCache()
    {
        if (Options.CacheFile is not { } file) return;
        lock (_flushGate)
        {
            if (Interlocked.Exchange(ref _dirty, 0) == 0) return;
            var sb = new StringBuilder();
            var encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
            foreach (var (key, entry) in _cache.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
                using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = encoder }))
                {
                    w.WriteStartObject();
                    w.WriteString("key", key);
                    w.WriteString("template", entry.Template);
                    w.WriteString("model", entry.Model);
                    w.WriteString("output", entry.Output);
                    w.WriteEndObject();
                }
                sb.Append(Encoding.UTF8.GetString(buffer.WrittenSpan)).Append('\n');
            }
            AtomicFile.WriteAllText(file, sb.ToString());
        }
    }

    /// <summary>The cache key of a (prompt, response) pair under this judge: lowercase hex SHA-256 of the length-prefixed
    /// UTF-8 fields (format version, template id, system and user texts, placeholders, format, output token limit, model
    /// id, prompt, response).</summary>
    internal string Key(string prompt, string response)
    {
        var t = Options.Template;
        string[] fields = [KeyVersion, t.Id, t.SystemPrompt ?? "\0none", t.UserPrompt, t.PromptPlaceholder, t.ResponsePlaceholder,
            t.Format.ToString(), _maxOutputTokens.ToString(System.Globalization.CultureInfo.InvariantCulture), ModelId, prompt, response];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> length = stackalloc byte[8];
        foreach (var f in fields)
        {
            var bytes = Encoding.UTF8.GetBytes(f);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(length, bytes.Length);
            hash.AppendData(length);
            hash.AppendData(bytes);
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private async Task FetchAsync(string key, DatasetRecord item, string response, CancellationTokenSource failed)
    {
        try
        {
            string output = await AskAsync(item, response, failed.Token).ConfigureAwait(false);
            if (_cache.TryAdd(key, new CacheEntry(Options.Template.Id, ModelId, output))) Interlocked.Exchange(ref _dirty, 1);
        }
        catch
        {
            failed.Cancel();
            throw;
        }
    }

    private async Task<string> AskAsync(DatasetRecord item, string response, CancellationToken cancellationToken)
    {
        var messages = Messages(item.UserPrompt, response);
        for (int attempt = 1; ; attempt++)
        {
            Exception error;
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            CancellationTokenSource? timeout = null;
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                Interlocked.Increment(ref _requests);
                if (Options.RequestTimeout is { } limit)
                {
                    timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(limit);
                }
                var options = new ChatOptions { Temperature = 0f, MaxOutputTokens = _maxOutputTokens, ModelId = Options.ModelId };
                var answer = await Client.GetResponseAsync(messages, options, timeout?.Token ?? cancellationToken).ConfigureAwait(false);
                return answer?.Text ?? throw new InvalidOperationException($"{Client.GetType().Name} returned no response.");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException e) when (timeout?.IsCancellationRequested == true)
            {
                error = new TimeoutException($"The chat judge's request took longer than {Options.RequestTimeout}.", e);
            }
            catch (Exception e) when (_isTransient(e))
            {
                error = e;
            }
            finally
            {
                timeout?.Dispose();
                _gate.Release();
            }
            if (attempt > Options.MaxRetries) throw new JudgeRetriesExhaustedException(item.Id, attempt, error);
            Interlocked.Increment(ref _retries);
            await Task.Delay(RetryDelay(attempt), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>InitialRetryDelay * 2^(attempt - 1), at most MaxRetryDelay.</summary>
    private TimeSpan RetryDelay(int attempt)
    {
        double ticks = Options.InitialRetryDelay.Ticks * Math.Pow(2, Math.Min(attempt - 1, 30));
        return ticks >= Options.MaxRetryDelay.Ticks ? Options.MaxRetryDelay : TimeSpan.FromTicks((long)ticks);
    }

    private static bool DefaultIsTransient(Exception e) =>
        e is not (ArgumentException or NotSupportedException or NotImplementedException or ObjectDisposedException);

    private void Load(string path)
    {
        string text = SafeFiles.ReadAllText(path, MaxCacheFileBytes, (m, e) => new JudgeCacheFormatException(path, null, Strip(m, path), e), allowEmpty: true);
        var lines = text.Split('\n');
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n].TrimEnd('\r');
            int number = n + 1;
            if (line.Length == 0)
            {
                if (n == lines.Length - 1) break; // the final newline
                throw new JudgeCacheFormatException(path, number, "empty line");
            }
            string where = $"{path}:{number}";
            using var doc = SafeFiles.ParseJson(line, where, (m, e) => new JudgeCacheFormatException(path, number, Strip(m, where), e));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new JudgeCacheFormatException(path, number, "expected a JSON object");
            string? key = null, template = null, model = null, output = null;
            foreach (var p in root.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new JudgeCacheFormatException(path, number, $"\"{p.Name}\" must be a string");
                switch (p.Name)
                {
                    case "key": key = p.Value.GetString(); break;
                    case "template": template = p.Value.GetString(); break;
                    case "model": model = p.Value.GetString(); break;
                    case "output": output = p.Value.GetString(); break;
                    default: throw new JudgeCacheFormatException(path, number, $"unknown property \"{p.Name}\" (expected key, template, model, output)");
                }
            }
            if (key is null || key.Length != 64 || !key.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f'))
                throw new JudgeCacheFormatException(path, number, "\"key\" must be 64 lowercase hex digits (a SHA-256)");
            if (output is null) throw new JudgeCacheFormatException(path, number, "missing \"output\"");
            var entry = new CacheEntry(template ?? "", model ?? "", output);
            if (!_cache.TryAdd(key, entry) && _cache[key].Output != output)
                throw new JudgeCacheFormatException(path, number, $"key {key} appears again with a different output");
        }
    }

    private static string Strip(string message, string prefix) =>
        message.StartsWith(prefix + ": ", StringComparison.Ordinal) ? message[(prefix.Length + 2)..] : message;

    private sealed record CacheEntry(string Template, string Model, string Output);
}
