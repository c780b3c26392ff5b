using DeepAlign.Runtime;
using DeepAlign.Training;
using static TorchSharp.torch;

namespace DeepAlign.Method.Baselines;

/// <summary>
/// Qi et al.'s safety-recovery data augmentation (their Eq. 2; docs/method.md section 4): cross-entropy of the safe
/// response r given (x, h_&lt;=K_pre) on the <c>harmful</c> rows (built by <see cref="DeepAlign.Training.Data.SafetyRecoveryExampleBuilder"/>),
/// mixed with cross-entropy of the benign responses. Their alpha = 0.2 is realised by the 1 : 4 batch mix, and the
/// loss is one token-weighted mean over every target of the accumulated batch (as an SFT trainer over the mixed data
/// computes it). Logged terms: <c>ce</c> (the loss), <c>ce_harmful</c> and <c>ce_benign</c> (each source's share of it).
/// </summary>
public sealed class AugmentationObjective : ITrainingObjective
{
    /// <summary>Creates the objective.</summary>
    /// <param name="vocabularySize">Logits columns that enter the softmax (null: all).</param>
    public AugmentationObjective(int? vocabularySize = null)
    {
        VocabularySize = BaselineTargets.CheckVocabularySize(vocabularySize);
    }

    /// <summary>Logits columns that enter the softmax (null: all).</summary>
    public int? VocabularySize { get; }

    /// <inheritdoc />
    public string Name => "augmentation";

    /// <inheritdoc />
    public IReadOnlyList<string> RequiredTeachers => Array.Empty<string>();

    /// <inheritdoc />
    public TokenCounts CountTokens(TrainingBatch batch) => BaselineTargets.CountTokens(batch);

    /// <inheritdoc />
    public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
    {
        var (mask, labels, lp) = BaselineTargets.StudentLogProbs(batch, context, VocabularySize);
        var nll = TargetedCompletionTerms.CrossEntropy(lp, labels);
        var loss = context.Normalize(nll.sum());
        var terms = new Dictionary<string, Tensor> { ["ce"] = loss.detach() };
        using (no_grad())
        {
            // Each source's share of the loss (they add up to ce).
            var rows = batch.Examples.Select(e => e.Source == TrainingSources.Harmful).ToArray();
            using var rowFlags = tensor(rows, device: mask.device).unsqueeze(1).expand(mask.shape);
            var harmful = rowFlags[mask];
            terms["ce_harmful"] = context.Normalize(nll.detach().masked_fill(harmful.logical_not(), Scalars.ZeroDouble).sum());
            terms["ce_benign"] = context.Normalize(nll.detach().masked_fill(harmful, Scalars.ZeroDouble).sum());
        }
        return new ObjectiveOutput { Loss = loss, Terms = terms };
    }
}

/// <summary>
/// The setup the two baselines share: every target of the batch counts in one group, and the student's log-softmax
/// (fp32, over the first <c>VocabularySize</c> columns) at the positions that predict the targets.
/// </summary>
internal static class BaselineTargets
{
    /// <summary>Returns <paramref name="vocabularySize"/>; throws when it is given and not positive.</summary>
    public static int? CheckVocabularySize(int? vocabularySize) => vocabularySize is <= 0
        ? throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, "The vocabulary size must be positive.")
        : vocabularySize;

    /// <summary>Every target of the batch, in the default group (one token-weighted mean over the accumulated batch).</summary>
    public static TokenCounts CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return new TokenCounts(TokenCounts.DefaultGroup, batch.TargetCount);
    }

    /// <summary>Forward pass of the student; the predict mask, the targets' labels [N] and the student's log-probabilities [N, V] at them.</summary>
    public static (Tensor Mask, Tensor Labels, Tensor LogProbs) StudentLogProbs(TrainingBatch batch, ObjectiveContext context, int? vocabularySize)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(context);
        var logits = context.Student.Forward(batch.InputIds, batch.AttentionMask);
        var mask = ObjectiveRows.PredictMask(batch);
        var lp = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(logits, mask), vocabularySize);
        return (mask, ObjectiveRows.Labels(batch, mask), lp);
    }
}
