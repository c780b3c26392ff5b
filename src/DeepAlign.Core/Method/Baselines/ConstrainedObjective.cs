using DeepAlign.Runtime;
using DeepAlign.Training;
using static TorchSharp.torch;

namespace DeepAlign.Method.Baselines;

/// <summary>
/// Qi et al.'s token-wise constrained objective (their Eq. 3; docs/method.md section 4) on whatever data the user trains
/// on: loss_j = (2 / beta_j) softplus(beta_j (log pi_ref(y_j) - log pi_theta(y_j))) with their beta schedule
/// (beta_1 = 0.5, beta_2..5 = 2, beta_j&gt;5 = 0.1) over response positions j, pi_ref = the initial aligned model (the
/// frozen teacher <c>aligned</c>), a token-weighted mean over every target. The loss value reported is this softplus
/// form; its gradient is the exact one (their code clamps the detached weight at 1e-3; we do not). Their optimiser
/// uses AdamW beta1 = 0.5 (<see cref="TargetedCompletion.TargetedCompletionTrainerOptions.DefaultTrainerOptions"/>). Logged terms:
/// <c>constrained</c> (the loss) and <c>ce</c> (plain cross-entropy of the same targets, for comparison).
/// </summary>
public sealed class ConstrainedObjective : ITrainingObjective
{
    /// <summary>Creates the objective.</summary>
    /// <param name="betas">beta schedule (validated here); null for Qi et al.'s.</param>
    /// <param name="vocabularySize">Logits columns that enter the softmax (null: all).</param>
    public ConstrainedObjective(ConstrainedBetaSchedule? betas = null, int? vocabularySize = null)
    {
        VocabularySize = BaselineTargets.CheckVocabularySize(vocabularySize);
        Betas = (betas ?? new ConstrainedBetaSchedule()).Validate();
    }

    /// <summary>The beta schedule.</summary>
    public ConstrainedBetaSchedule Betas { get; }

    /// <summary>Logits columns that enter the softmax (null: all).</summary>
    public int? VocabularySize { get; }

    /// <inheritdoc />
    public string Name => "constrained";

    /// <inheritdoc />
    public IReadOnlyList<string> RequiredTeachers { get; } = new[] { TeacherNames.Aligned };

    /// <inheritdoc />
    public TokenCounts CountTokens(TrainingBatch batch) => BaselineTargets.CountTokens(batch);

    /// <inheritdoc />
    public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
    {
        var (mask, labels, lp) = BaselineTargets.StudentLogProbs(batch, context, VocabularySize);
        var positions = ObjectiveRows.Positions(batch, mask);
        var policy = PositionStatistics.TokenLogProbs(lp, labels);
        Tensor reference;
        using (no_grad())
        {
            var refLogits = ObjectiveRows.TeacherPredicting(context.Teacher(TeacherNames.Aligned), batch, mask, allRows: true);
            reference = PositionStatistics.TokenLogProbs(PositionStatistics.LogSoftmax(refLogits, VocabularySize), labels);
        }
        var betas = Betas.Betas(positions.clamp_min(Scalars.One));
        var loss = context.Normalize(ConstrainedLoss.Loss(policy, reference, betas).sum());
        var ce = context.Normalize(policy.detach().neg().sum());
        return new ObjectiveOutput { Loss = loss, Terms = new Dictionary<string, Tensor> { ["constrained"] = loss.detach(), ["ce"] = ce } };
    }
}
