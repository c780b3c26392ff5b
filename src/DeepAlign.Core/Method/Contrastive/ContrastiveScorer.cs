using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Runtime;
using static TorchSharp.torch;

namespace DeepAlign.Method.Contrastive;

/// <summary>
/// The contrastive next-token scorer (docs/method.md section 2) that a <see cref="Generator"/> drives: at every step both
/// models run once on the same tokens, each with its own KV cache and batched over the active rows, and the scores
/// <see cref="ContrastiveScoring.Step"/> computes from their log-probabilities are returned. All token selection
/// (greedy, sampling with temperature/top-k/top-p, forcing, stops) stays in the generator.
/// </summary>
/// <remarks>
/// <para>The aligned (expert) model's device is the scorer's device: ids and masks arrive there, the base (amateur)
/// model's inputs are copied to its own device and its log-probabilities copied back, and the scores are combined on
/// the aligned model's device. alpha_j is evaluated per row at the row's response position j (forced prefix
/// tokens count), so rows of one batch may use different alphas.</para>
/// <para>With alpha = 0 and beta_cd = 0 the scores are the aligned model's log-probabilities bit for bit, so the
/// generator reproduces the aligned model's own decoding exactly (same ids, greedy and seeded sampling).</para>
/// <para>Per step the scorer adds no host synchronisation; with <see cref="ContrastiveDecoderOptions.Trace"/> on,
/// <see cref="DescribeStep"/> copies a few numbers per row to the host.</para>
/// </remarks>
public sealed class ContrastiveScorer : INextTokenScorer
{
    private readonly ModelScorer _aligned;
    private readonly ModelScorer _base;
    private readonly ContrastiveScoringOptions _scoring;
    private readonly bool _sameDevice;

    // The current step's tensors; they belong to the generator's per-step dispose scope.
    private Tensor? _la;
    private Tensor? _lb;
    private Tensor? _scores;
    private Tensor? _alpha;
    private Tensor? _u;
    private ScoringContext? _context;
    private List<ContrastiveTraceEntry>[]? _trace;

    /// <summary>Creates the scorer over two models that share a tokenizer (neither is owned).</summary>
    /// <param name="aligned">The aligned (expert) model pi_a; the scores live on its device.</param>
    /// <param name="baseModel">The base (amateur) model pi_b; may live on another device.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <exception cref="ArgumentException">Invalid options, or logits of different widths without <see cref="ContrastiveDecoderOptions.VocabSize"/>.</exception>
    public ContrastiveScorer(ICausalLanguageModel aligned, ICausalLanguageModel baseModel, ContrastiveDecoderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(aligned);
        ArgumentNullException.ThrowIfNull(baseModel);
        Options = (options ?? new ContrastiveDecoderOptions()).Validate();
        if (Options.VocabSize is null && aligned.VocabSize != baseModel.VocabSize)
            throw new ArgumentException(
                $"The aligned model's logits have {aligned.VocabSize} entries and the base model's {baseModel.VocabSize}; " +
                "set ContrastiveDecoderOptions.VocabSize to the shared tokenizer's vocabulary size to cut both.", nameof(options));
        int cut = Options.VocabSize ?? aligned.VocabSize;
        if (cut > aligned.VocabSize || cut > baseModel.VocabSize)
            throw new ArgumentException(
                $"ContrastiveDecoderOptions.VocabSize = {cut} exceeds a model's logits width (aligned {aligned.VocabSize}, base {baseModel.VocabSize}).", nameof(options));
        AlignedModel = aligned;
        BaseModel = baseModel;
        _aligned = new ModelScorer(aligned, cut);
        _base = new ModelScorer(baseModel, cut);
        _scoring = Options.ToScoringOptions();
        _sameDevice = SameDevice(aligned.Device, baseModel.Device);
    }

    /// <summary>The aligned (expert) model.</summary>
    public ICausalLanguageModel AlignedModel { get; }

    /// <summary>The base (amateur) model.</summary>
    public ICausalLanguageModel BaseModel { get; }

    /// <summary>The validated options.</summary>
    public ContrastiveDecoderOptions Options { get; }

    /// <inheritdoc />
    public Device Device => AlignedModel.Device;

    /// <inheritdoc />
    public int VocabSize => _aligned.VocabSize;

    /// <summary>
    /// The trace of the most recent generation call, one list per request (in request order) with one entry per
    /// generated token; null when <see cref="ContrastiveDecoderOptions.Trace"/> is off or before the first call.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<ContrastiveTraceEntry>>? LastTrace => _trace;

    /// <inheritdoc />
    public Tensor Prefill(Tensor inputIds, Tensor attentionMask, ScoringContext context, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(context);
        ClearStep();
        _trace = Options.Trace ? Enumerable.Range(0, context.Rows.Count == 0 ? 0 : context.Rows.Max() + 1).Select(_ => new List<ContrastiveTraceEntry>()).ToArray() : null;
        var la = _aligned.Prefill(inputIds, attentionMask, context, maxNewTokens);
        var lb = _base.Prefill(ToBase(inputIds), ToBase(attentionMask), context, maxNewTokens);
        return Combine(la, lb, context);
    }

    /// <inheritdoc />
    public Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ClearStep();
        var la = _aligned.Step(nextTokens, attentionMask, context);
        var lb = _base.Step(ToBase(nextTokens), ToBase(attentionMask), context);
        return Combine(la, lb, context);
    }

    /// <inheritdoc />
    public void SelectRows(IReadOnlyList<long> rows)
    {
        _aligned.SelectRows(rows);
        _base.SelectRows(rows);
    }

    /// <inheritdoc />
    public void Reset()
    {
        ClearStep();
        _aligned.Reset();
        _base.Reset();
    }

    /// <inheritdoc />
    public void Dispose() => Reset();

    /// <summary>
    /// With <see cref="ContrastiveDecoderOptions.Trace"/> on, one <see cref="ContrastiveTraceEntry"/> per active row for
    /// the step just scored (also appended to <see cref="LastTrace"/>); otherwise null.
    /// </summary>
    /// <param name="chosenTokens">The chosen id of every active row.</param>
    /// <returns>Per-row trace entries, or null.</returns>
    public IReadOnlyList<object?>? DescribeStep(IReadOnlyList<long> chosenTokens)
    {
        ArgumentNullException.ThrowIfNull(chosenTokens);
        if (!Options.Trace || _trace is null) return null;
        if (_la is null || _lb is null || _scores is null || _alpha is null || _context is null)
            throw new InvalidOperationException("DescribeStep was called before a step was scored.");
        int n = chosenTokens.Count;
        if (n != _la.shape[0]) throw new ArgumentException($"Expected {_la.shape[0]} chosen tokens (one per active row); got {n}.", nameof(chosenTokens));

        double[] values;
        const int fields = 7;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var ids = tensor(chosenTokens.ToArray(), new long[] { n, 1 }, ScalarType.Int64, Device);
            var pa = _la.gather(-1, ids).squeeze(-1).exp();
            var pb = _lb.gather(-1, ids).squeeze(-1).exp();
            var pc = _scores.log_softmax(-1).gather(-1, ids).squeeze(-1).exp();
            var kl = PositionStatistics.KlDivergence(_la, _lb);
            var u = _u ?? PositionStatistics.Incompleteness(_la, _lb, Options.Incompleteness.Tau, Options.Incompleteness.TopKBase);
            var plausible = _scores.gt(Scalars.NegativeInfinity).sum(-1);
            var stacked = stack(new[] { _alpha, u, kl, pa, pb, pc, plausible }.Select(t => t.to(ScalarType.Float64)).ToArray(), 1);
            values = stacked.cpu().data<double>().ToArray();
        }

        var entries = new object?[n];
        for (int i = 0; i < n; i++)
        {
            int o = i * fields;
            var entry = new ContrastiveTraceEntry(
                _context.Rows[i], _context.Step, _context.ResponsePositions[i], chosenTokens[i],
                values[o], values[o + 1], values[o + 2], values[o + 3], values[o + 4], values[o + 5], (int)values[o + 6]);
            entries[i] = entry;
            if (_context.Rows[i] < _trace.Length) _trace[_context.Rows[i]].Add(entry);
        }
        return entries;
    }

    private Tensor Combine(Tensor la, Tensor lb, ScoringContext context)
    {
        if (context.ResponsePositions.Count != la.shape[0])
            throw new ArgumentException($"The scoring context lists {context.ResponsePositions.Count} rows; the batch has {la.shape[0]}.", nameof(context));
        var positions = tensor(context.ResponsePositions.Select(p => (long)p).ToArray(), new long[] { la.shape[0] }, ScalarType.Int64, la.device);
        var lbHere = _sameDevice ? lb : lb.to(la.device);
        // The step's tensors land in the caller's (the generator's per-step) dispose scope, like ModelScorer's scores.
        var step = ContrastiveScoring.Step(la, lbHere, positions, _scoring);
        _la = la;
        _lb = lbHere;
        _scores = step.Scores;
        _alpha = step.Alpha;
        _u = step.Incompleteness;
        _context = context;
        return step.Scores;
    }

    private Tensor ToBase(Tensor t) => _sameDevice ? t : t.to(BaseModel.Device);

    private void ClearStep()
    {
        _la = _lb = _scores = _alpha = _u = null;
        _context = null;
    }

    private static bool SameDevice(Device a, Device b) => a.type == b.type && a.index == b.index;
}
