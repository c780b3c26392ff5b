using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Training.Data;
using TorchSharp;
using DeepAlign.Data;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// Measures <see cref="AlignmentMetricsResult"/> without gradient, in evaluation mode: the quantities a comparison of
/// objectives reports side by side. U_j is the profile's incompleteness score (docs/method.md section 1) with the student
/// in the aligned model's place, teacher-forced along the harmful responses h (end-of-turn excluded): low U at late
/// positions means the student moved the base's preferred continuations of a harmful start away (deeper alignment).
/// </summary>
public static class AlignmentMetrics
{
    /// <summary>Computes the metrics (leaves the student in evaluation mode).</summary>
    /// <param name="student">The trained model.</param>
    /// <param name="aligned">The aligned model (for the benign KL).</param>
    /// <param name="baseModel">The base model (for U_j), or null.</param>
    /// <param name="harmful">Harmful triples (e.g. a validation split).</param>
    /// <param name="benign">Benign pairs.</param>
    /// <param name="encoder">Encoder for text records; null when pre-tokenized.</param>
    /// <param name="options">tau, kB and the vocabulary cut are read from here; null for the defaults.</param>
    /// <param name="lateFrom">First response position counted as late (default 6: the buckets 1-5 vs 6+).</param>
    /// <param name="batchSize">Sequences per forward pass.</param>
    /// <param name="seed">Seed of the K_pre draws.</param>
    /// <returns>The metrics.</returns>
    public static AlignmentMetricsResult Measure(ICausalLanguageModel student, ICausalLanguageModel aligned, ICausalLanguageModel? baseModel,
        IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<DatasetRecord> benign, IConversationEncoder? encoder,
        TargetedCompletionOptions? options = null, int lateFrom = 6, int batchSize = 8, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(aligned);
        ArgumentNullException.ThrowIfNull(harmful);
        ArgumentNullException.ThrowIfNull(benign);
        if (lateFrom < 2) throw new ArgumentOutOfRangeException(nameof(lateFrom), lateFrom, "lateFrom must be >= 2.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batchSize must be >= 1.");
        options = (options ?? new TargetedCompletionOptions()).Validate();
        long? vocab = options.VocabularySize;
        long pad = student.Config.PadTokenId ?? (student.Config.EosTokenIds is { Count: > 0 } e ? e[0] : 0);
        var recovery = new SafetyRecoveryExampleBuilder(encoder);
        var safety = harmful.Select((r, i) => recovery.Build(r, new Random(TrainingData.Mix(seed, i, 0, 0, 0x5afe)))).ToList();
        var profile = new SftExampleBuilder(encoder, "harmful_response", AppendEndOfTurn: false);
        var along = harmful.Select(r => profile.Build(r, new Random(0))).ToList();
        var benignExamples = benign.Select(r => new SftExampleBuilder(encoder).Build(r, new Random(0))).ToList();

        student.SetTrainingMode(false);
        {
            using var noGrad = no_grad();
            double ceSum = 0; long ceCount = 0;
            foreach (var chunk in safety.Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                using var batch = BatchCollator.Collate(chunk, pad, student.Device);
                var mask = ObjectiveRows.PredictMask(batch);
                var lp = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(student.Forward(batch.InputIds, batch.AttentionMask), mask), vocab);
                ceSum += TargetedCompletionTerms.CrossEntropy(lp, ObjectiveRows.Labels(batch, mask)).sum().item<float>();
                ceCount += batch.TargetCount;
            }
            double klSum = 0; long klCount = 0;
            foreach (var chunk in benignExamples.Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                using var batch = BatchCollator.Collate(chunk, pad, student.Device);
                var mask = ObjectiveRows.PredictMask(batch);
                var ls = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(student.Forward(batch.InputIds, batch.AttentionMask), mask), vocab);
                var la = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(aligned.Forward(batch.InputIds, batch.AttentionMask), mask), vocab);
                klSum += TargetedCompletionTerms.UtilityKl(la, ls).sum().item<float>();
                klCount += batch.TargetCount;
            }
            double? early = null, late = null;
            if (baseModel is not null)
            {
                double eSum = 0, lSum = 0; long eN = 0, lN = 0;
                foreach (var chunk in along.Chunk(batchSize))
                {
                    using var scope = NewDisposeScope();
                    using var batch = BatchCollator.Collate(chunk, pad, student.Device);
                    var mask = ObjectiveRows.PredictMask(batch);
                    var ls = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(student.Forward(batch.InputIds, batch.AttentionMask), mask), vocab);
                    var lb = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(baseModel.Forward(batch.InputIds, batch.AttentionMask), mask), vocab);
                    var u = PositionStatistics.Incompleteness(ls, lb, options.Incompleteness.Tau, options.Incompleteness.TopKBase);
                    var j = ObjectiveRows.Positions(batch, mask);
                    using var lateFromScalar = lateFrom.ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
                    var isLate = j.ge(lateFromScalar);
                    lSum += u.masked_fill(isLate.logical_not(), Scalars.ZeroDouble).sum().item<float>();
                    eSum += u.masked_fill(isLate, Scalars.ZeroDouble).sum().item<float>();
                    long nl = isLate.sum().item<long>();
                    lN += nl; eN += j.numel() - nl;
                }
                early = eN > 0 ? eSum / eN : double.NaN;
                late = lN > 0 ? lSum / lN : double.NaN;
            }
            return new AlignmentMetricsResult(ceCount > 0 ? ceSum / ceCount : double.NaN, klCount > 0 ? klSum / klCount : double.NaN, early, late);
        }
    }
}
