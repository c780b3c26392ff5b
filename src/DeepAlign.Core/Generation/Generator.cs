using System.Diagnostics;
using System.Runtime.CompilerServices;
using DeepAlign.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// Batched, KV-cached autoregressive generation over an <see cref="ICausalLanguageModel"/> or any
/// <see cref="INextTokenScorer"/> (e.g. a contrastive decoder), greedy or sampled, with stop ids, stop conditions,
/// forced response prefixes, per-step token forcing, streaming and cancellation.
/// </summary>
/// <remarks>
/// <para>One call: the prompts plus forced prefixes are left-padded into one batch and prefilled in one
/// forward pass; then every step feeds the chosen token of each active row in one forward pass that computes
/// last-position scores only. A row finishes on a stop id (kept as its last id), a stop condition, or
/// <see cref="GenerationOptions.MaxNewTokens"/>; finished rows are dropped from the batch (and the scorer's
/// caches) so they cost nothing afterwards. Each step runs in its own dispose scope with gradients off; no
/// tensor outlives a call.</para>
/// <para>Cancellation is checked before every step and throws <see cref="OperationCanceledException"/>.
/// A generator serves one call at a time (its scorer holds the batch state); it is not thread-safe.</para>
/// </remarks>
public sealed class Generator : IDisposable
{
    private readonly bool _ownsScorer;
    private readonly IReadOnlyList<long> _defaultStopTokenIds;
    private readonly long _defaultPadTokenId;
    private readonly ILogger _logger;
    private int _busy;
    private bool _disposed;

    /// <summary>Creates a generator over one model, scored by a <see cref="ModelScorer"/> the generator owns.</summary>
    /// <param name="model">The model (not owned).</param>
    /// <param name="vocabSize">Tokenizer vocabulary size when the model's logits are wider (the scores are cut to it); null keeps them all.</param>
    /// <param name="logger">Optional logger.</param>
    /// <remarks>When <see cref="GenerationOptions.StopTokenIds"/> is null the model's <c>eos_token_id</c>s stop rows, and
    /// <see cref="GenerationOptions.PadTokenId"/> defaults to the model's <c>pad_token_id</c>.</remarks>
    public Generator(ICausalLanguageModel model, int? vocabSize = null, ILogger? logger = null)
        : this(new ModelScorer(model ?? throw new ArgumentNullException(nameof(model)), vocabSize),
               model.Config.EosTokenIds?.Select(i => (long)i).ToArray(),
               model.Config.PadTokenId,
               ownsScorer: true,
               logger)
    {
    }

    /// <summary>Creates a generator over any scorer.</summary>
    /// <param name="scorer">The scorer.</param>
    /// <param name="defaultStopTokenIds">Stop ids used when <see cref="GenerationOptions.StopTokenIds"/> is null.</param>
    /// <param name="defaultPadTokenId">Pad id used when <see cref="GenerationOptions.PadTokenId"/> is null (else 0).</param>
    /// <param name="ownsScorer">Whether <see cref="Dispose"/> disposes the scorer.</param>
    /// <param name="logger">Optional logger.</param>
    public Generator(INextTokenScorer scorer, IReadOnlyList<long>? defaultStopTokenIds = null, long? defaultPadTokenId = null, bool ownsScorer = false, ILogger? logger = null)
    {
        Scorer = scorer ?? throw new ArgumentNullException(nameof(scorer));
        _defaultStopTokenIds = defaultStopTokenIds?.ToArray() ?? Array.Empty<long>();
        _defaultPadTokenId = defaultPadTokenId ?? 0;
        _ownsScorer = ownsScorer;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The scorer the generator drives.</summary>
    public INextTokenScorer Scorer { get; }

    /// <summary>Generates a continuation for every request.</summary>
    /// <param name="requests">The sequences (at least one).</param>
    /// <param name="options">Decoding options (defaults: <see cref="GenerationOptions.Default"/>).</param>
    /// <param name="progress">Optional progress, reported after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public IReadOnlyList<GeneratedSequence> Generate(
        IReadOnlyList<GenerationRequest> requests,
        GenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var run = new Run(this, requests, options);
        foreach (var _ in run.Steps(progress, cancellationToken)) { }
        return run.Results();
    }

    /// <summary>Runs <see cref="Generate"/> on the thread pool.</summary>
    /// <param name="requests">The sequences (at least one).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="progress">Optional progress, reported after every step.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One result per request, in request order.</returns>
    public Task<IReadOnlyList<GeneratedSequence>> GenerateAsync(
        IReadOnlyList<GenerationRequest> requests,
        GenerationOptions? options = null,
        IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var run = new Run(this, requests, options); // validates synchronously
        return Task.Run(() =>
        {
            foreach (var _ in run.Steps(progress, cancellationToken)) { }
            return run.Results();
        }, cancellationToken);
    }

    /// <summary>
    /// Streams the chosen tokens step by step (forced prefix tokens are not streamed: they are in the requests).
    /// Each step is computed synchronously when the consumer asks for it; breaking out of the loop releases the batch.
    /// </summary>
    /// <param name="requests">The sequences (at least one).</param>
    /// <param name="options">Decoding options.</param>
    /// <param name="cancellationToken">Checked before every step.</param>
    /// <returns>One <see cref="GenerationStep"/> per decoding step.</returns>
    public async IAsyncEnumerable<GenerationStep> StreamAsync(
        IReadOnlyList<GenerationRequest> requests,
        GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var run = new Run(this, requests, options);
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var step in run.Steps(null, cancellationToken))
            yield return step;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsScorer) Scorer.Dispose();
    }

    private sealed class RowState
    {
        public required GenerationRequest Request { get; init; }
        public required long Seed { get; init; }
        public required SamplingSettings Sampling { get; init; }
        public List<long> Generated { get; } = new();
        public FinishReason? Finish { get; set; }
        public int ResponsePositionOfNext => Request.ForcedPrefixIds.Count + Generated.Count + 1;
    }

    /// <summary>The state of one generation call.</summary>
    private sealed class Run
    {
        private readonly Generator _owner;
        private readonly GenerationOptions _options;
        private readonly RowState[] _rows;
        private readonly HashSet<long> _stopIds;
        private readonly long _padId;
        private float[]? _hostBuffer;

        public Run(Generator owner, IReadOnlyList<GenerationRequest> requests, GenerationOptions? options)
        {
            ObjectDisposedException.ThrowIf(owner._disposed, owner);
            ArgumentNullException.ThrowIfNull(requests);
            _owner = owner;
            _options = (options ?? GenerationOptions.Default).Validate();
            if (requests.Count == 0) throw new ArgumentException("At least one generation request is needed.", nameof(requests));
            int vocab = owner.Scorer.VocabSize;
            long baseSeed = _options.Seed ?? Random.Shared.NextInt64();
            var callSampling = SamplingSettings.From(_options);
            _rows = new RowState[requests.Count];
            for (int r = 0; r < requests.Count; r++)
            {
                var request = requests[r] ?? throw new ArgumentException($"Request {r} is null.", nameof(requests));
                if (request.PromptIds is null || request.ForcedPrefixIds is null)
                    throw new ArgumentException($"Request {r}: PromptIds and ForcedPrefixIds must not be null.", nameof(requests));
                if (request.PromptIds.Count + request.ForcedPrefixIds.Count == 0)
                    throw new ArgumentException($"Request {r} has neither prompt ids nor a forced prefix.", nameof(requests));
                foreach (var id in request.PromptIds.Concat(request.ForcedPrefixIds))
                    if (id < 0 || id >= vocab)
                        throw new ArgumentException($"Request {r} holds token id {id}, outside the scorer's vocabulary of {vocab}.", nameof(requests));
                SamplingSettings sampling;
                try { sampling = request.Sampling?.Validate() ?? callSampling; }
                catch (ArgumentException e) { throw new ArgumentException($"Request {r}: {e.Message}", nameof(requests), e); }
                _rows[r] = new RowState { Request = request, Seed = request.Seed ?? TokenSampler.RowSeed(baseSeed, r), Sampling = sampling };
            }
            _stopIds = new HashSet<long>(_options.StopTokenIds ?? owner._defaultStopTokenIds);
            _padId = _options.PadTokenId ?? owner._defaultPadTokenId;
            if (_padId >= vocab) _padId = 0;
        }

        public IReadOnlyList<GeneratedSequence> Results() =>
            _rows.Select((row, r) => new GeneratedSequence(
                r, row.Request.PromptIds, row.Request.ForcedPrefixIds, row.Generated.ToArray(),
                row.Finish ?? throw new InvalidOperationException("Generation ended before every row finished."))).ToArray();

        public IEnumerable<GenerationStep> Steps(IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
        {
            var scorer = _owner.Scorer;
            var device = scorer.Device;
            int batch = _rows.Length;
            int maxNew = _options.MaxNewTokens;
            var inputs = _rows.Select(r => (IReadOnlyList<long>)r.Request.PromptIds.Concat(r.Request.ForcedPrefixIds).ToArray()).ToArray();
            int promptLength = inputs.Max(i => i.Count);
            int width = promptLength + maxNew;
            var (ids, mask, _) = LeftPadding.Build(inputs, _padId, width);

            if (Interlocked.Exchange(ref _owner._busy, 1) == 1)
                throw new InvalidOperationException("This generator is already running a generation call; use one generator per concurrent call.");
            var stopwatch = Stopwatch.StartNew();
            Tensor? maskBuffer = null;
            var active = Enumerable.Range(0, batch).ToList();
            long[] lastChosen = Array.Empty<long>();
            long generatedTotal = 0;
            int step = 0;
            _owner._logger.LogDebug("Generating for {Rows} rows: prompt length {PromptLength}, at most {MaxNew} new tokens, {Mode}.",
                batch, promptLength, maxNew, _options.DoSample ? "sampling" : "greedy");
            try
            {
                maskBuffer = tensor(mask, new long[] { batch, width }, ScalarType.Int64, device).DetachFromDisposeScope();
                while (active.Count > 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    GenerationStep result;
                    using (no_grad())
                    using (var scope = NewDisposeScope())
                    {
                        var context = new ScoringContext(step, active.ToArray(), active.Select(r => _rows[r].ResponsePositionOfNext).ToArray());
                        Tensor scores;
                        if (step == 0)
                        {
                            var inputIds = tensor(ids, new long[] { batch, promptLength }, ScalarType.Int64, device);
                            scores = scorer.Prefill(inputIds, maskBuffer.narrow(1, 0, promptLength), context, maxNew);
                        }
                        else
                        {
                            var tokens = tensor(lastChosen, new long[] { active.Count, 1 }, ScalarType.Int64, device);
                            scores = scorer.Step(tokens, maskBuffer.narrow(1, 0, promptLength + step), context);
                        }

                        var chosen = Choose(scores, step, active, out var origins);
                        var info = scorer.DescribeStep(chosen);
                        if (info is not null && info.Count != active.Count)
                            throw new InvalidOperationException($"The scorer described {info.Count} rows at step {step}; the batch has {active.Count}.");

                        var tokensOut = new GeneratedToken[active.Count];
                        var keep = new List<long>(active.Count);
                        var nextActive = new List<int>(active.Count);
                        var nextChosen = new List<long>(active.Count);
                        for (int i = 0; i < active.Count; i++)
                        {
                            var row = _rows[active[i]];
                            int position = row.ResponsePositionOfNext;
                            row.Generated.Add(chosen[i]);
                            generatedTotal++;
                            FinishReason? finish = null;
                            if (_stopIds.Contains(chosen[i])) finish = FinishReason.StopToken;
                            else if (_options.StopConditions.Any(c => c.ShouldStop(active[i], row.Request, row.Generated))) finish = FinishReason.StopCondition;
                            else if (row.Generated.Count >= maxNew) finish = FinishReason.MaxNewTokens;
                            row.Finish = finish;
                            tokensOut[i] = new GeneratedToken(active[i], chosen[i], position, origins[i], finish, info?[i]);
                            if (finish is null)
                            {
                                keep.Add(i);
                                nextActive.Add(active[i]);
                                nextChosen.Add(chosen[i]);
                            }
                        }

                        if (nextActive.Count > 0 && nextActive.Count < active.Count)
                        {
                            scorer.SelectRows(keep);
                            var index = tensor(keep.ToArray(), ScalarType.Int64, device);
                            var compacted = maskBuffer.index_select(0, index).DetachFromDisposeScope();
                            maskBuffer.Dispose();
                            maskBuffer = compacted;
                        }
                        active = nextActive;
                        lastChosen = nextChosen.ToArray();
                        result = new GenerationStep(step, tokensOut);
                    }
                    step++;
                    progress?.Report(new GenerationProgress(step, active.Count, batch, generatedTotal));
                    yield return result;
                }
                stopwatch.Stop();
                _owner._logger.LogDebug("Generated {Tokens} tokens in {Steps} steps ({Seconds:F2} s).", generatedTotal, step, stopwatch.Elapsed.TotalSeconds);
            }
            finally
            {
                maskBuffer?.Dispose();
                scorer.Reset();
                Volatile.Write(ref _owner._busy, 0);
            }
        }

        private long[] Choose(Tensor scores, int step, List<int> active, out TokenOrigin[] origins)
        {
            int vocab = _owner.Scorer.VocabSize;
            if (scores.dim() != 2 || scores.shape[0] != active.Count || scores.shape[1] != vocab)
                throw new InvalidOperationException(
                    $"The scorer returned scores of shape [{string.Join(", ", scores.shape)}] at step {step}; expected [{active.Count}, {vocab}].");
            if (scores.dtype != ScalarType.Float32)
                throw new InvalidOperationException($"The scorer returned {scores.dtype} scores at step {step}; expected float32.");
            // One host copy per step: validity check and token choice both read it.
            var host = TokenSampler.HostScores(scores, ref _hostBuffer);
            int invalid = TokenSampler.FindInvalidRow(host, active.Count, vocab);
            if (invalid >= 0)
                throw new InvalidOperationException($"At step {step} the scores of row {active[invalid]} are all negative infinity or contain NaN; no token can be chosen.");

            long?[]? overrides = null;
            if (_options.TokenForcer is { } forcer)
            {
                var rows = active.Select(r => new ForcingRow(r, _rows[r].ResponsePositionOfNext, _rows[r].Request, _rows[r].Generated.AsReadOnly())).ToArray();
                overrides = forcer.Choose(scores, rows);
                if (overrides is not null && overrides.Length != active.Count)
                    throw new InvalidOperationException($"The token forcer returned {overrides.Length} entries at step {step}; the batch has {active.Count} rows.");
            }

            var settings = new SamplingSettings[active.Count];
            var uniforms = new double[active.Count];
            for (int i = 0; i < active.Count; i++)
            {
                var row = _rows[active[i]];
                settings[i] = row.Sampling;
                if (row.Sampling.DoSample) uniforms[i] = TokenSampler.Uniform(row.Seed, step);
            }
            var chosen = TokenSampler.ChooseValidRows(host, active.Count, vocab, settings, uniforms);
            origins = new TokenOrigin[chosen.Length];
            if (overrides is not null)
            {
                for (int i = 0; i < chosen.Length; i++)
                {
                    if (overrides[i] is not { } forced) continue;
                    if (forced < 0 || forced >= vocab)
                        throw new InvalidOperationException($"The token forcer chose id {forced} for row {active[i]} at step {step}, outside the vocabulary of {vocab}.");
                    chosen[i] = forced;
                    origins[i] = TokenOrigin.Forcer;
                }
            }
            return chosen;
        }
    }
}
