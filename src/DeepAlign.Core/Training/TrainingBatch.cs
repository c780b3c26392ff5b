using DeepAlign.Training.Data;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// One micro-batch of right-padded sequences with everything an objective needs: ids, attention mask,
/// which tokens are targets, each token's response position j and each row's source tag. Produced by
/// <see cref="BatchCollator"/>; owns its tensors (dispose it, or let the step's dispose scope do it).
/// </summary>
/// <remarks>
/// Alignment convention: <see cref="TargetMask"/>[b, t] = true means token <c>InputIds[b, t]</c> is a training
/// target, predicted from the logits at position <c>t - 1</c>. Position 0 is never a target. Padding is on the
/// right (pads are causally after every real token, so they never influence real positions); pad tokens have
/// attention mask 0, are never targets and have response position 0.
/// </remarks>
public sealed class TrainingBatch : IDisposable
{
    /// <summary>Token ids, <c>[batch, length]</c>, int64.</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>1 for real tokens, 0 for right padding, <c>[batch, length]</c>, int64.</summary>
    public required Tensor AttentionMask { get; init; }

    /// <summary>True where the token is a training target, <c>[batch, length]</c>, bool.</summary>
    public required Tensor TargetMask { get; init; }

    /// <summary>
    /// Response position j (1-based, docs/method.md section 0) of every token, 0 outside the response,
    /// <c>[batch, length]</c>, int64. Forced response tokens (a harmful prefix of length K_pre) count, so the
    /// first target of a safety-recovery row has j = K_pre + 1.
    /// </summary>
    public required Tensor ResponsePositions { get; init; }

    /// <summary>The examples the rows were built from, in row order (source tag, prompt length, K_pre, location).</summary>
    public required IReadOnlyList<TrainingExample> Examples { get; init; }

    /// <summary>
    /// Number of preference pairs in the batch, 0 for single sequences. When positive, the batch has
    /// 2 x <see cref="PreferencePairs"/> rows: rows <c>0..n-1</c> are the chosen sequences and rows <c>n..2n-1</c> the
    /// rejected ones, pair i being rows <c>i</c> and <c>n + i</c> (the layout of TRL's concatenated forward).
    /// </summary>
    public int PreferencePairs { get; init; }

    /// <summary>Number of rows.</summary>
    public int Size => Examples.Count;

    /// <summary>Padded length.</summary>
    public long Length => InputIds.shape[1];

    /// <summary>Number of target tokens in the batch.</summary>
    public long TargetCount => Examples.Sum(e => (long)e.TargetCount);

    /// <summary>Number of real (non-pad) tokens in the batch.</summary>
    public long TokenCount => Examples.Sum(e => (long)e.Ids.Length);

    /// <summary>Row indices whose <see cref="TrainingExample.Source"/> equals <paramref name="source"/>.</summary>
    /// <param name="source">A source tag such as <c>harmful</c> or <c>benign</c>.</param>
    public IReadOnlyList<int> RowsFrom(string source)
    {
        var rows = new List<int>();
        for (int i = 0; i < Examples.Count; i++)
            if (Examples[i].Source == source) rows.Add(i);
        return rows;
    }

    /// <summary>
    /// A bool <c>[batch, length]</c> mask that is <see cref="TargetMask"/> restricted to rows from <paramref name="source"/>.
    /// </summary>
    /// <param name="source">A source tag.</param>
    public Tensor TargetMaskFor(string source)
    {
        var rowFlags = Examples.Select(e => e.Source == source).ToArray();
        using var rows = tensor(rowFlags, device: TargetMask.device).unsqueeze(1);
        return TargetMask.logical_and(rows);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        TargetMask.Dispose();
        ResponsePositions.Dispose();
    }
}
