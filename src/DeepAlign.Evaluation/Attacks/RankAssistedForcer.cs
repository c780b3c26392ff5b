using DeepAlign.Generation;
using DeepAlign.Models;
using static TorchSharp.torch;

namespace DeepAlign.Evaluation.Attacks;

/// <summary>
/// The rank-assisted prefilling attacker (docs/method.md section 5, after PRESTO 2025) as an <see cref="ITokenForcer"/>:
/// for the first <see cref="Steps"/> tokens the target chooses, it forces, among the target's top
/// <see cref="TopR"/> tokens (by the scores the target decodes with), the harmful reference's token at this response
/// position if it is there, else the one the base model rates highest; afterwards the target continues on its own.
/// </summary>
/// <remarks>
/// "The next token of h" is the reference token at the same response position j (h_j), whether or not earlier
/// forced tokens matched h. The base model scores the row's actual context (prompt, any forced prefix, the tokens
/// chosen so far) in one batched forward pass without a cache, only at steps where some row needs it.
/// Thread-unsafe; use one instance per generation call.
/// </remarks>
public sealed class RankAssistedForcer : ITokenForcer
{
    private readonly ICausalLanguageModel _base;
    private readonly IReadOnlyList<IReadOnlyList<long>> _harmful;
    private readonly long _padId;

    /// <summary>Creates the attacker.</summary>
    /// <param name="baseModel">The base model whose ratings break ties outside h.</param>
    /// <param name="harmfulResponses">Per request of the generation call (by <see cref="ForcingRow.Row"/>), the harmful reference's ids.</param>
    /// <param name="steps">How many of the target's first choices are overridden (docs/method.md: 10).</param>
    /// <param name="topR">How many of the target's best tokens the attacker may choose from (docs/method.md: 20).</param>
    /// <param name="padTokenId">Id written into left padding of the base model's batch.</param>
    public RankAssistedForcer(ICausalLanguageModel baseModel, IReadOnlyList<IReadOnlyList<long>> harmfulResponses, int steps = 10, int topR = 20, long padTokenId = 0)
    {
        _base = baseModel ?? throw new ArgumentNullException(nameof(baseModel));
        _harmful = harmfulResponses ?? throw new ArgumentNullException(nameof(harmfulResponses));
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be at least 1.");
        if (topR < 1) throw new ArgumentOutOfRangeException(nameof(topR), topR, "topR must be at least 1.");
        Steps = steps;
        TopR = topR;
        _padId = padTokenId;
    }

    /// <summary>Choices overridden per row.</summary>
    public int Steps { get; }
    /// <summary>Size of the target's candidate set.</summary>
    public int TopR { get; }
    /// <summary>Tokens forced because h's token was among the target's top R.</summary>
    public int ForcedFromReference { get; private set; }
    /// <summary>Tokens forced as the base model's favourite among the target's top R.</summary>
    public int ForcedFromBase { get; private set; }

    /// <inheritdoc />
    public long?[]? Choose(Tensor scores, IReadOnlyList<ForcingRow> rows)
    {
        if (rows.All(r => r.GeneratedIds.Count >= Steps)) return null;
        int vocab = (int)scores.shape[1];
        int r = Math.Min(TopR, vocab);
        long[] top;
        using (var scope = NewDisposeScope())
            top = scores.topk(r, dim: 1, largest: true, sorted: true).indexes.cpu().data<long>().ToArray();
        var result = new long?[rows.Count];
        var needBase = new List<int>();
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (row.GeneratedIds.Count >= Steps) continue;
            var candidates = top.AsSpan(i * r, r);
            var reference = row.Row < _harmful.Count ? _harmful[row.Row] : Array.Empty<long>();
            int j = row.ResponsePosition - 1;
            if (j < reference.Count && candidates.Contains(reference[j]))
            {
                result[i] = reference[j];
                ForcedFromReference++;
            }
            else needBase.Add(i);
        }
        if (needBase.Count > 0)
        {
            var baseLogProbs = BaseLogProbabilities(needBase.Select(i => rows[i]).ToList(), vocab);
            for (int n = 0; n < needBase.Count; n++)
            {
                int i = needBase[n];
                var candidates = top.AsSpan(i * r, r);
                long best = candidates[0];
                float bestScore = float.NegativeInfinity;
                foreach (var c in candidates)
                {
                    float s = baseLogProbs[n][c];
                    if (s > bestScore) { bestScore = s; best = c; }
                }
                result[i] = best;
                ForcedFromBase++;
            }
        }
        return result;
    }

    private float[][] BaseLogProbabilities(IReadOnlyList<ForcingRow> rows, int vocab)
    {
        var contexts = rows.Select(r => (IReadOnlyList<long>)r.Request.PromptIds.Concat(r.Request.ForcedPrefixIds).Concat(r.GeneratedIds).ToArray()).ToArray();
        var (ids, mask, length) = LeftPadding.Build(contexts, _padId);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var device = _base.Device;
        var logits = _base.Forward(tensor(ids, new long[] { rows.Count, length }, ScalarType.Int64, device),
            tensor(mask, new long[] { rows.Count, length }, ScalarType.Int64, device), null, lastPositionOnly: true);
        var last = logits.select(1, logits.shape[1] - 1);
        if (last.shape[1] > vocab) last = last.narrow(1, 0, vocab);
        var logp = last.to(ScalarType.Float32).log_softmax(-1).cpu();
        var flat = logp.data<float>().ToArray();
        int width = (int)logp.shape[1];
        return Enumerable.Range(0, rows.Count).Select(b => flat.AsSpan(b * width, width).ToArray()).ToArray();
    }
}
