using DeepAlign.Runtime;
using DeepAlign.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// The targeted-completion loss (docs/method.md section 3) on the training loop:
/// <code>
/// L = CE(r) + lambda_kd KL(q_j || pi_theta,j) + lambda_pen Pen_j + lambda_util U(benign)
/// </code>
/// where CE, KL and Pen are token-weighted means over the safe-response targets of the <c>harmful</c> rows
/// (safety-recovery contexts; harmful-prefix tokens are never targets) and the utility anchor is a token-weighted mean
/// over the targets of the <c>benign</c> rows of KL(pi_a || pi_theta) (or CE on y'), each over the whole accumulated
/// batch. Teacher-side quantities (B_j, c_j, U_j, g_j, q_j, w_j) come from the frozen aligned and base models without
/// gradient, through the shared <see cref="PositionStatistics"/> and <see cref="TargetedCompletionTerms"/> functions.
/// Per micro-batch: one student forward (all rows), one aligned forward (all rows with the KL anchor, harmful rows
/// only with the CE anchor) and one base forward (harmful rows only). Logged terms (unweighted): <c>ce</c>, <c>kl</c>,
/// <c>pen</c>, <c>util</c>, and <c>u</c> (mean U_j of the harmful targets, a diagnostic).
/// </summary>
public sealed class TargetedCompletionObjective : ITrainingObjective
{
    /// <summary>Name of the frozen aligned model in the teachers (pi_a; the student starts from a copy of it).</summary>
    public const string AlignedTeacher = TeacherNames.Aligned;

    /// <summary>Name of the frozen base model in the teachers (pi_b).</summary>
    public const string BaseTeacher = TeacherNames.Base;

    /// <summary>Creates the objective.</summary>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    public TargetedCompletionObjective(TargetedCompletionOptions? options = null)
    {
        Options = (options ?? new TargetedCompletionOptions()).Validate();
    }

    /// <summary>The options.</summary>
    public TargetedCompletionOptions Options { get; }

    /// <inheritdoc />
    public string Name => "targeted-completion";

    /// <inheritdoc />
    public IReadOnlyList<string> RequiredTeachers { get; } = new[] { AlignedTeacher, BaseTeacher };

    /// <inheritdoc />
    public TokenCounts CountTokens(TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectiveRows.CheckSources(batch, Name, TrainingSources.Harmful, TrainingSources.Benign);
        var counts = new TokenCounts();
        counts.Add(TrainingSources.Harmful, batch.Examples.Where(e => e.Source == TrainingSources.Harmful).Sum(e => (long)e.TargetCount));
        counts.Add(TrainingSources.Benign, batch.Examples.Where(e => e.Source == TrainingSources.Benign).Sum(e => (long)e.TargetCount));
        return counts;
    }

    /// <inheritdoc />
    public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(context);
        ObjectiveRows.CheckSources(batch, Name, TrainingSources.Harmful, TrainingSources.Benign);
        var o = Options;
        long? vocab = o.VocabularySize;
        bool hasHarmful = batch.Examples.Any(e => e.Source == TrainingSources.Harmful && e.TargetCount > 0);
        bool hasBenign = batch.Examples.Any(e => e.Source == TrainingSources.Benign && e.TargetCount > 0);
        bool klAnchor = o.UtilityAnchor == UtilityAnchor.AlignedKl;

        var harmMask = ObjectiveRows.PredictMask(batch, TrainingSources.Harmful);
        var benignMask = ObjectiveRows.PredictMask(batch, TrainingSources.Benign);
        var logits = context.Student.Forward(batch.InputIds, batch.AttentionMask);
        var device = logits.device;
        var zero = zeros(Array.Empty<long>(), ScalarType.Float32, device);

        // One aligned forward: all rows when the KL anchor needs benign rows too, else the harmful rows only.
        Tensor? alignedHarm = null, alignedBenign = null;
        if (hasHarmful || (hasBenign && klAnchor))
        {
            var aligned = context.Teacher(AlignedTeacher);
            if (hasBenign && klAnchor)
            {
                using var noGrad = no_grad();
                var all = aligned.Forward(batch.InputIds, batch.AttentionMask);
                if (hasHarmful) alignedHarm = ObjectiveRows.Predicting(all, harmMask);
                alignedBenign = ObjectiveRows.Predicting(all, benignMask);
            }
            else
            {
                alignedHarm = ObjectiveRows.TeacherPredicting(aligned, batch, harmMask, allRows: false);
            }
        }

        Tensor ce = zero, kl = zero, pen = zero, util = zero, uSum = zero;
        if (hasHarmful)
        {
            var student = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(logits, harmMask), vocab);
            var labels = ObjectiveRows.Labels(batch, harmMask);
            var positions = ObjectiveRows.Positions(batch, harmMask);
            var baseLogits = ObjectiveRows.TeacherPredicting(context.Teacher(BaseTeacher), batch, harmMask, allRows: false);
            TeacherSide teacher;
            using (no_grad())
            {
                var la = PositionStatistics.LogSoftmax(alignedHarm!, vocab);
                var lb = PositionStatistics.LogSoftmax(baseLogits, vocab);
                teacher = Teacher(la, lb, positions, o);
            }
            kl = TargetedCompletionTerms.DistillationKl(teacher.Q, student).sum();
            pen = TargetedCompletionTerms.Penalty(student, teacher.Set, teacher.W).sum();
            uSum = teacher.Set.Incompleteness.sum();
            ce = TargetedCompletionTerms.CrossEntropy(student, labels).sum();
        }
        if (hasBenign)
        {
            var student = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(logits, benignMask), vocab);
            if (klAnchor)
            {
                Tensor la;
                using (no_grad()) la = PositionStatistics.LogSoftmax(alignedBenign!, vocab);
                util = TargetedCompletionTerms.UtilityKl(la, student).sum();
            }
            else
            {
                util = TargetedCompletionTerms.CrossEntropy(student, ObjectiveRows.Labels(batch, benignMask)).sum();
            }
        }
        var ceN = context.Normalize(ce, TrainingSources.Harmful);
        var klN = context.Normalize(kl, TrainingSources.Harmful);
        var penN = context.Normalize(pen, TrainingSources.Harmful);
        var utilN = context.Normalize(util, TrainingSources.Benign);
        // ceN + w_kl * klN + w_pen * penN + w_util * utilN, same ops as the operators but explicit Scalars (Runtime/Scalars.cs).
        using var distillationWeight = o.DistillationWeight.ToScalar();
        using var penaltyWeight = o.PenaltyWeight.ToScalar();
        using var utilityWeight = o.UtilityWeight.ToScalar();
        var loss = ceN.add(klN.mul(distillationWeight), Scalars.One).add(penN.mul(penaltyWeight), Scalars.One).add(utilN.mul(utilityWeight), Scalars.One);
        if (!hasHarmful && !hasBenign) loss = loss.add(logits.sum().mul(Scalars.ZeroDouble), Scalars.One); // no targets: a zero loss that still has a graph
        return new ObjectiveOutput
        {
            Loss = loss,
            Terms = new Dictionary<string, Tensor>
            {
                ["ce"] = ceN.detach(), ["kl"] = klN.detach(), ["pen"] = penN.detach(), ["util"] = utilN.detach(),
                ["u"] = context.Normalize(uSum, TrainingSources.Harmful).detach(),
            },
        };
    }

    /// <summary>Teacher-side quantities of the harmful targets (no gradient).</summary>
    internal sealed record TeacherSide(Tensor Q, BaseFavoredSet Set, Tensor G, Tensor W);

    /// <summary>B_j, U_j, g_j, q_j and w_j from the frozen models' log-probabilities at the harmful targets.</summary>
    internal static TeacherSide Teacher(Tensor alignedLogProbs, Tensor baseLogProbs, Tensor positions, TargetedCompletionOptions o)
    {
        using var noGrad = no_grad();
        var set = PositionStatistics.BaseFavored(alignedLogProbs, baseLogProbs, o.Incompleteness.Tau, o.Incompleteness.TopKBase);
        var g = TargetedCompletionTerms.MixWeights(set.Incompleteness, o.Teacher);
        var q = TargetedCompletionTerms.HybridTeacher(alignedLogProbs, baseLogProbs, g, o.Teacher);
        var w = o.ProbeNorms is { } norms
            ? PositionWeights.FromProbe(norms, positions, o.PositionWeights)
            : PositionWeights.Ramp(positions, o.PositionWeights);
        return new TeacherSide(q, set, g, w);
    }
}
