using DeepAlign.Models;
using DeepAlign.Training;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// Source tags and row selection shared by the targeted-completion objectives: which tokens of a micro-batch are
/// targets of a given source, the logits that predict them, their labels and their response positions.
/// </summary>
public static class TrainingSources
{
    /// <summary>Source tag of safety-recovery contexts built from harmful triples (x, h, r).</summary>
    public const string Harmful = "harmful";

    /// <summary>Source tag of benign pairs (x', y').</summary>
    public const string Benign = "benign";
}

/// <summary>Internal helpers: predicting-position selection (token t is predicted by the logits at t - 1).</summary>
internal static class ObjectiveRows
{
    /// <summary>[B, T-1] mask of targets (at t = 1..T-1) whose row comes from <paramref name="source"/>.</summary>
    public static Tensor PredictMask(TrainingBatch batch, string source)
    {
        using var m = batch.TargetMaskFor(source);
        return m.narrow(1, 1, batch.Length - 1).clone();
    }

    /// <summary>[B, T-1] mask of every target.</summary>
    public static Tensor PredictMask(TrainingBatch batch) => batch.TargetMask.narrow(1, 1, batch.Length - 1);

    /// <summary>The rows of [B, T, W] logits that predict the masked targets: [N, W].</summary>
    public static Tensor Predicting(Tensor logits, Tensor predictMask)
    {
        long t = predictMask.shape[1];
        return logits.narrow(1, 0, t)[predictMask];
    }

    /// <summary>Labels of the masked targets, [N] int64.</summary>
    public static Tensor Labels(TrainingBatch batch, Tensor predictMask) => batch.InputIds.narrow(1, 1, batch.Length - 1)[predictMask];

    /// <summary>Response positions j of the masked targets, [N] int64.</summary>
    public static Tensor Positions(TrainingBatch batch, Tensor predictMask) => batch.ResponsePositions.narrow(1, 1, batch.Length - 1)[predictMask];

    /// <summary>Rows of the batch whose source is one of <paramref name="sources"/>; checks that no row has another source.</summary>
    public static void CheckSources(TrainingBatch batch, string objective, params string[] sources)
    {
        foreach (var e in batch.Examples)
            if (Array.IndexOf(sources, e.Source) < 0)
                throw new InvalidOperationException(
                    $"Objective '{objective}' got a row from source '{e.Source}' ({e.Location ?? "no location"}); it expects sources {string.Join(" and ", sources.Select(s => $"'{s}'"))} (name the data sources so).");
    }

    /// <summary>
    /// Forward of a frozen teacher, under no_grad, on the rows where <paramref name="predictMask"/> has targets only
    /// (cut to the longest such row); returns the logits predicting the masked targets, [N, W] (same order as
    /// <see cref="Predicting"/> on the full batch).
    /// </summary>
    public static Tensor TeacherPredicting(ICausalLanguageModel teacher, TrainingBatch batch, Tensor predictMask, bool allRows)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        if (allRows)
        {
            var logits = teacher.Forward(batch.InputIds, batch.AttentionMask);
            return Predicting(logits, predictMask).MoveToOuterDisposeScope();
        }
        var rowHas = predictMask.any(1);
        var rows = rowHas.nonzero().squeeze(1);
        long length = 0;
        var flags = rowHas.cpu().data<bool>().ToArray();
        for (int r = 0; r < flags.Length; r++)
            if (flags[r]) length = Math.Max(length, batch.Examples[r].Ids.Length);
        length = Math.Min(length, batch.Length);
        var ids = batch.InputIds.index_select(0, rows).narrow(1, 0, length);
        var att = batch.AttentionMask.index_select(0, rows).narrow(1, 0, length);
        var sub = predictMask.index_select(0, rows).narrow(1, 0, length - 1);
        var subLogits = teacher.Forward(ids, att);
        return Predicting(subLogits, sub).MoveToOuterDisposeScope();
    }
}
