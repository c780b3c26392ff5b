using DeepAlign.Runtime;
using DeepAlign.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// Direct Preference Optimization (Rafailov et al. 2023) as a <see cref="Trainer"/> objective; formulas, defaults and
/// data forms in docs/training.md, "DPO". Per preference pair (x, y_w, y_l), with log-probabilities summed over the
/// response tokens (the end-of-turn token included) and the log-ratios
/// <c>r_w = log pi_theta(y_w|x) - log pi_ref(y_w|x)</c>, <c>r_l = log pi_theta(y_l|x) - log pi_ref(y_l|x)</c>:
/// <code>
/// sigmoid:  -(1 - eps) log sigmoid(beta (r_w - r_l)) - eps log sigmoid(-beta (r_w - r_l))     (eps = 0: DPO; eps &gt; 0: cDPO)
/// ipo:      (r_w / |y_w| - r_l / |y_l| - 1 / (2 beta))^2                                      (TRL's length-averaged IPO)
/// </code>
/// and the loss is the mean over the pairs of the accumulated batch (the normalisation group <see cref="PairGroup"/>
/// counts pairs, not tokens). pi_ref is the frozen teacher <see cref="ReferenceTeacher"/>, evaluated once per micro-batch
/// without gradient; log-softmax in float32. Metrics (<see cref="DpoMetrics"/>, TRL's names and definitions, rewards
/// from the summed log-ratios for both losses) are means over the same pairs.
/// </summary>
/// <remarks>
/// The data come from <see cref="PreferenceExampleBuilder"/>: each micro-batch holds whole pairs (chosen rows, then
/// the rejected rows; see <see cref="TrainingBatch.PreferencePairs"/>), so <see cref="TrainerOptions.MicroBatchSize"/>
/// counts pairs (two sequences each), as TRL's <c>per_device_train_batch_size</c> does.
/// </remarks>
public sealed class DpoObjective : ITrainingObjective
{
    /// <summary>Name of the frozen reference model pi_ref in the trainer's teachers (usually a second copy of the starting model).</summary>
    public const string ReferenceTeacher = "reference";

    /// <summary>The normalisation group: the number of preference pairs.</summary>
    public const string PairGroup = "pairs";

    /// <summary>Creates the objective.</summary>
    /// <param name="options">Options (validated here); null for TRL's defaults.</param>
    public DpoObjective(DpoOptions? options = null)
    {
        Options = (options ?? new DpoOptions()).Validate();
    }

    /// <summary>The options.</summary>
    public DpoOptions Options { get; }

    /// <inheritdoc />
    public string Name => "dpo";

    /// <inheritdoc />
    public IReadOnlyList<string> RequiredTeachers { get; } = new[] { ReferenceTeacher };

    /// <inheritdoc />
    public TokenCounts CountTokens(TrainingBatch batch) => new(PairGroup, CheckPairs(batch));

    /// <inheritdoc />
    public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        int n = CheckPairs(batch);
        var o = Options;
        var reference = context.Teacher(ReferenceTeacher);
        // The reference first, without gradient: only its [2n] sequence log-probabilities outlive this block.
        Tensor referenceLogProbs;
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            var referenceLogits = reference.Forward(batch.InputIds, batch.AttentionMask);
            referenceLogProbs = SequenceLogProbs(referenceLogits, batch, o.VocabularySize).MoveToOuterDisposeScope();
        }
        if (o.DisableDropout) context.Student.SetTrainingMode(false);
        var logits = context.Student.Forward(batch.InputIds, batch.AttentionMask);
        var policyLogProbs = SequenceLogProbs(logits, batch, o.VocabularySize);

        var counts = tensor(batch.Examples.Select(e => (float)e.TargetCount).ToArray(), device: policyLogProbs.device);
        var policyChosen = policyLogProbs.narrow(0, 0, n);
        var policyRejected = policyLogProbs.narrow(0, n, n);
        var referenceChosen = referenceLogProbs.narrow(0, 0, n);
        var referenceRejected = referenceLogProbs.narrow(0, n, n);
        var losses = PairLosses(policyChosen, policyRejected, referenceChosen, referenceRejected, counts.narrow(0, 0, n), counts.narrow(0, n, n), o);
        var loss = context.Normalize(losses.sum(), PairGroup);

        var terms = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (no_grad())
        {
            using var beta = o.Beta.ToScalar();
            var chosenRewards = policyChosen.detach().sub(referenceChosen).mul(beta);
            var rejectedRewards = policyRejected.detach().sub(referenceRejected).mul(beta);
            terms[DpoMetrics.ChosenRewards] = context.Normalize(chosenRewards.sum(), PairGroup);
            terms[DpoMetrics.RejectedRewards] = context.Normalize(rejectedRewards.sum(), PairGroup);
            terms[DpoMetrics.Accuracies] = context.Normalize(chosenRewards.gt(rejectedRewards).to_type(ScalarType.Float32).sum(), PairGroup);
            terms[DpoMetrics.Margins] = context.Normalize(chosenRewards.sub(rejectedRewards).sum(), PairGroup);
            terms[DpoMetrics.ChosenLogProbs] = context.Normalize(policyChosen.detach().sum(), PairGroup);
            terms[DpoMetrics.RejectedLogProbs] = context.Normalize(policyRejected.detach().sum(), PairGroup);
        }
        return new ObjectiveOutput { Loss = loss, Terms = terms };
    }

    /// <summary>
    /// The per-pair losses [n] from sequence log-probabilities (each [n], float32): the sigmoid (with label smoothing)
    /// or IPO formula of the class summary.
    /// </summary>
    /// <param name="policyChosen">log pi_theta(y_w | x), summed over the response tokens.</param>
    /// <param name="policyRejected">log pi_theta(y_l | x).</param>
    /// <param name="referenceChosen">log pi_ref(y_w | x).</param>
    /// <param name="referenceRejected">log pi_ref(y_l | x).</param>
    /// <param name="chosenTokens">|y_w|, the number of response tokens (IPO only; counts below 1 are taken as 1).</param>
    /// <param name="rejectedTokens">|y_l| (IPO only).</param>
    /// <param name="options">beta, loss type and label smoothing (validated here).</param>
    public static Tensor PairLosses(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected,
        Tensor chosenTokens, Tensor rejectedTokens, DpoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        using var scope = NewDisposeScope();
        var chosenRatio = policyChosen.sub(referenceChosen);
        var rejectedRatio = policyRejected.sub(referenceRejected);
        Tensor losses;
        if (options.LossType == DpoLossType.Ipo)
        {
            var h = chosenRatio.div(chosenTokens.clamp_min(Scalars.OneDouble)).sub(rejectedRatio.div(rejectedTokens.clamp_min(Scalars.OneDouble)));
            using var target = (1.0 / (2.0 * options.Beta)).ToScalar();
            losses = h.sub(target).pow(Scalars.Two); // not square(): it builds an implicit Scalar inside TorchSharp
        }
        else
        {
            using var beta = options.Beta.ToScalar();
            var z = chosenRatio.sub(rejectedRatio).mul(beta);
            if (options.LabelSmoothing == 0)
            {
                losses = z.log_sigmoid().neg();
            }
            else
            {
                using var keep = (1.0 - options.LabelSmoothing).ToScalar();
                using var flip = options.LabelSmoothing.ToScalar();
                losses = z.log_sigmoid().mul(keep).add(z.neg().log_sigmoid().mul(flip), Scalars.One).neg();
            }
        }
        return losses.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per row of <paramref name="batch"/>, the sum over its target tokens of log p(token | prefix): a [rows] float32
    /// tensor (log-softmax in float32 over the first <paramref name="vocabularySize"/> columns; only the rows of
    /// target positions are normalised). A row without targets gets 0.
    /// </summary>
    /// <param name="logits">[rows, length, V] logits aligned with the batch's ids.</param>
    /// <param name="batch">The batch (its target mask and examples).</param>
    /// <param name="vocabularySize">Columns to keep, or null for all.</param>
    public static Tensor SequenceLogProbs(Tensor logits, TrainingBatch batch, int? vocabularySize = null)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        long t = batch.Length;
        int rows = batch.Size;
        var mask = batch.TargetMask.narrow(1, 1, t - 1);           // [B, T-1]: targets at t = 1..T-1
        var predicting = logits.narrow(1, 0, t - 1);                 // predicted from t - 1
        if (vocabularySize is int v && v < predicting.shape[2]) predicting = predicting.narrow(2, 0, v);
        var labels = batch.InputIds.narrow(1, 1, t - 1)[mask];       // [N], row-major
        var picked = predicting[mask].to_type(ScalarType.Float32).log_softmax(-1).gather(1, labels.unsqueeze(1)).squeeze(1);
        // The row of each selected target, in the same row-major order as the boolean mask selection.
        var owner = new List<long>();
        for (int r = 0; r < rows; r++)
        {
            var targets = batch.Examples[r].Targets;
            for (int i = 1; i < targets.Length; i++)
                if (targets[i]) owner.Add(r);
        }
        var index = tensor(owner.ToArray(), dtype: ScalarType.Int64, device: picked.device);
        var sums = zeros(new long[] { rows }, ScalarType.Float32, picked.device).index_add(0, index, picked, Scalars.One);
        return sums.MoveToOuterDisposeScope();
    }

    private int CheckPairs(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.PreferencePairs <= 0)
            throw new InvalidOperationException($"Objective '{Name}' needs preference pairs, but the batch holds single sequences ({batch.Examples.FirstOrDefault()?.Location ?? "no location"}); build the data with PreferenceExampleBuilder.");
        if (batch.Size != 2 * batch.PreferencePairs)
            throw new InvalidOperationException($"Objective '{Name}': a batch of {batch.PreferencePairs} pairs must have {2 * batch.PreferencePairs} rows, not {batch.Size}.");
        return batch.PreferencePairs;
    }
}
