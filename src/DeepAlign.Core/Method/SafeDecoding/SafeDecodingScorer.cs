using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Runtime;
using static TorchSharp.torch;

namespace DeepAlign.Method.SafeDecoding;

/// <summary>
/// The SafeDecoding next-token scorer (Xu et al., ACL 2024; docs/safedecoding.md) that a <see cref="Generator"/>
/// drives. For the first m response tokens both models run on the same tokens, each with its own KV cache and batched
/// over the active rows, and the score of a token v is <c>log(p_orig(v) + alpha (p_expert(v) - p_orig(v)))</c> inside
/// the sample space (the smallest top-k intersection of both models with at least c tokens) and negative infinity
/// outside it; afterwards the scores are the original model's log-probabilities and the expert no longer runs. All
/// token selection (greedy, sampling with temperature/top-k/top-p, forcing, stops) stays in the generator.
/// </summary>
/// <remarks>
/// <para>The original model's device is the scorer's device: ids and masks arrive there, the expert's inputs are copied
/// to its own device and its log-probabilities copied back, and the scores are combined on the original model's device.
/// Whether a row is steered is decided per row from its response position j (forced prefix tokens count, unless
/// <see cref="SafeDecodingOptions.CountForcedPrefix"/> is off), so rows of one batch may be in different phases. Once no
/// active row can be steered any more, the expert's cache is released and the expert is not run again in that call;
/// when no row is steered at all (m = 0, or every forced prefix has at least m tokens) the expert never runs.</para>
/// <para>Unsteered scores are the original model's log-probabilities bit for bit, so the generator reproduces the
/// original model's own decoding exactly after the first m tokens, and at every step when m = 0.</para>
/// <para>Per step the scorer adds no host synchronisation; with <see cref="SafeDecodingOptions.Trace"/> on,
/// <see cref="DescribeStep"/> copies a few numbers per row to the host.</para>
/// </remarks>
public sealed class SafeDecodingScorer : INextTokenScorer
{
    private readonly ModelScorer _original;
    private readonly ModelScorer _expert;
    private readonly bool _sameDevice;
    private bool _expertRunning;

    // The current step's tensors; they belong to the generator's per-step dispose scope.
    private Tensor? _lo;
    private Tensor? _le;
    private Tensor? _scores;
    private Tensor? _depth;
    private bool[]? _steered;
    private ScoringContext? _context;
    private List<SafeDecodingTraceEntry>[]? _trace;

    /// <summary>Creates the scorer over two models that share a tokenizer (neither is owned).</summary>
    /// <param name="original">The original model being defended; the scores live on its device.</param>
    /// <param name="expert">The safety expert (a safety fine-tune of the original); may live on another device.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <exception cref="ArgumentException">Invalid options, logits of different widths without <see cref="SafeDecodingOptions.VocabSize"/>, or c larger than the vocabulary.</exception>
    public SafeDecodingScorer(ICausalLanguageModel original, ICausalLanguageModel expert, SafeDecodingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(expert);
        Options = (options ?? new SafeDecodingOptions()).Validate();
        if (Options.VocabSize is null && original.VocabSize != expert.VocabSize)
            throw new ArgumentException(
                $"The original model's logits have {original.VocabSize} entries and the expert's {expert.VocabSize}; " +
                "set SafeDecodingOptions.VocabSize to the shared tokenizer's vocabulary size to cut both.", nameof(options));
        int cut = Options.VocabSize ?? original.VocabSize;
        if (cut > original.VocabSize || cut > expert.VocabSize)
            throw new ArgumentException(
                $"SafeDecodingOptions.VocabSize = {cut} exceeds a model's logits width (original {original.VocabSize}, expert {expert.VocabSize}).", nameof(options));
        if (Options.MinCommonTokens > cut)
            throw new ArgumentException(
                $"SafeDecodingOptions.MinCommonTokens = {Options.MinCommonTokens} exceeds the scored vocabulary of {cut} tokens.", nameof(options));
        OriginalModel = original;
        ExpertModel = expert;
        _original = new ModelScorer(original, cut);
        _expert = new ModelScorer(expert, cut);
        _sameDevice = SameDevice(original.Device, expert.Device);
    }

    /// <summary>The original model being defended.</summary>
    public ICausalLanguageModel OriginalModel { get; }

    /// <summary>The safety expert.</summary>
    public ICausalLanguageModel ExpertModel { get; }

    /// <summary>The validated options.</summary>
    public SafeDecodingOptions Options { get; }

    /// <inheritdoc />
    public Device Device => OriginalModel.Device;

    /// <inheritdoc />
    public int VocabSize => _original.VocabSize;

    /// <summary>
    /// The trace of the most recent generation call, one list per request (in request order) with one entry per
    /// generated token; null when <see cref="SafeDecodingOptions.Trace"/> is off or before the first call.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<SafeDecodingTraceEntry>>? LastTrace => _trace;

    /// <summary>Whether the row about to choose the token at response position j (step <paramref name="step"/>) is steered.</summary>
    /// <param name="step">Decoding step (0 after the prefill); every row of a call has chosen exactly this many tokens.</param>
    /// <param name="responsePosition">Response position j of the token about to be chosen (counting forced prefix tokens).</param>
    /// <returns>True when j &lt;= m (or, with <see cref="SafeDecodingOptions.CountForcedPrefix"/> off, step &lt; m).</returns>
    public bool IsSteered(int step, int responsePosition) =>
        Options.CountForcedPrefix ? responsePosition <= Options.M : step < Options.M;

    /// <inheritdoc />
    public Tensor Prefill(Tensor inputIds, Tensor attentionMask, ScoringContext context, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(context);
        Reset();
        _trace = Options.Trace ? Enumerable.Range(0, context.Rows.Count == 0 ? 0 : context.Rows.Max() + 1).Select(_ => new List<SafeDecodingTraceEntry>()).ToArray() : null;
        var steered = SteeredRows(context, inputIds.shape[0]);
        var lo = _original.Prefill(inputIds, attentionMask, context, maxNewTokens);
        Tensor? le = null;
        if (steered.Contains(true))
        {
            _expertRunning = true;
            le = _expert.Prefill(ToExpert(inputIds), ToExpert(attentionMask), context, maxNewTokens);
        }
        return Combine(lo, le, steered, context);
    }

    /// <inheritdoc />
    public Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ClearStep();
        var steered = SteeredRows(context, nextTokens.shape[0]);
        var lo = _original.Step(nextTokens, attentionMask, context);
        Tensor? le = null;
        if (_expertRunning)
        {
            if (steered.Contains(true)) le = _expert.Step(ToExpert(nextTokens), ToExpert(attentionMask), context);
            else
            {
                // Positions only grow and rows only leave, so no row of this call will be steered again.
                _expert.Reset();
                _expertRunning = false;
            }
        }
        else if (steered.Contains(true))
            throw new InvalidOperationException($"Row {context.Rows[Array.IndexOf(steered, true)]} is steered at step {context.Step}, but no row was at the previous step.");
        return Combine(lo, le, steered, context);
    }

    /// <inheritdoc />
    public void SelectRows(IReadOnlyList<long> rows)
    {
        _original.SelectRows(rows);
        if (_expertRunning) _expert.SelectRows(rows);
    }

    /// <inheritdoc />
    public void Reset()
    {
        ClearStep();
        _original.Reset();
        _expert.Reset();
        _expertRunning = false;
    }

    /// <inheritdoc />
    public void Dispose() => Reset();

    /// <summary>
    /// With <see cref="SafeDecodingOptions.Trace"/> on, one <see cref="SafeDecodingTraceEntry"/> per active row for the
    /// step just scored (also appended to <see cref="LastTrace"/>); otherwise null.
    /// </summary>
    /// <param name="chosenTokens">The chosen id of every active row.</param>
    /// <returns>Per-row trace entries, or null.</returns>
    public IReadOnlyList<object?>? DescribeStep(IReadOnlyList<long> chosenTokens)
    {
        ArgumentNullException.ThrowIfNull(chosenTokens);
        if (!Options.Trace || _trace is null) return null;
        if (_lo is null || _scores is null || _steered is null || _context is null)
            throw new InvalidOperationException("DescribeStep was called before a step was scored.");
        int n = chosenTokens.Count;
        if (n != _lo.shape[0]) throw new ArgumentException($"Expected {_lo.shape[0]} chosen tokens (one per active row); got {n}.", nameof(chosenTokens));

        double[] values;
        const int fields = 5;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var ids = tensor(chosenTokens.ToArray(), new long[] { n, 1 }, ScalarType.Int64, Device);
            var po = _lo.gather(-1, ids).squeeze(-1).exp();
            var pe = (_le ?? _lo).gather(-1, ids).squeeze(-1).exp();
            var ps = _scores.log_softmax(-1).gather(-1, ids).squeeze(-1).exp();
            var size = _scores.gt(Scalars.NegativeInfinity).sum(-1);
            var depth = _depth ?? zeros(n, ScalarType.Int64, Device);
            var stacked = stack(new[] { po, pe, ps, size, depth }.Select(t => t.to(ScalarType.Float64)).ToArray(), 1);
            values = stacked.cpu().data<double>().ToArray();
        }

        var entries = new object?[n];
        for (int i = 0; i < n; i++)
        {
            int o = i * fields;
            bool steered = _steered[i];
            var entry = new SafeDecodingTraceEntry(
                _context.Rows[i], _context.Step, _context.ResponsePositions[i], chosenTokens[i], steered,
                (int)values[o + 3], steered ? (int)values[o + 4] : null,
                values[o], steered ? values[o + 1] : null, values[o + 2]);
            entries[i] = entry;
            if (_context.Rows[i] < _trace.Length) _trace[_context.Rows[i]].Add(entry);
        }
        return entries;
    }

    private bool[] SteeredRows(ScoringContext context, long rows)
    {
        if (context.ResponsePositions.Count != rows)
            throw new ArgumentException($"The scoring context lists {context.ResponsePositions.Count} rows; the batch has {rows}.", nameof(context));
        var steered = new bool[rows];
        for (int i = 0; i < steered.Length; i++) steered[i] = IsSteered(context.Step, context.ResponsePositions[i]);
        return steered;
    }

    private Tensor Combine(Tensor lo, Tensor? le, bool[] steered, ScoringContext context)
    {
        // The step's tensors land in the caller's (the generator's per-step) dispose scope, like ModelScorer's scores.
        _lo = lo;
        _steered = steered;
        _context = context;
        if (le is null)
        {
            _scores = lo;
            return lo;
        }
        var leHere = _sameDevice ? le : le.to(lo.device);
        var (mixed, depth) = SafeDecodingScoring.Steer(lo, leHere, Options.MinCommonTokens, Options.Alpha, Options.ProbabilityFloor);
        Tensor scores = mixed;
        if (steered.Contains(false))
        {
            var rowMask = tensor(steered, new long[] { steered.Length, 1 }, ScalarType.Bool, lo.device);
            scores = where(rowMask, mixed, lo);
        }
        _le = leHere;
        _scores = scores;
        _depth = depth;
        return scores;
    }

    private Tensor ToExpert(Tensor t) => _sameDevice ? t : t.to(ExpertModel.Device);

    private void ClearStep()
    {
        _lo = _le = _scores = _depth = null;
        _steered = null;
        _context = null;
    }

    private static bool SameDevice(Device a, Device b) => a.type == b.type && a.index == b.index;
}
