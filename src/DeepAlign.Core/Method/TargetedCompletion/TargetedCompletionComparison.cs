using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using DeepAlign.Data;
using DeepAlign.Text;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// Trains several objectives at equal budget and reports them side by side (docs/method.md section 4: "comparisons are
/// fair only at equal budget"): the same training/validation split, the same data stream settings and seed, the same
/// steps, batch and schedule, and the same learning-rate grid for every objective; each objective's learning rate is
/// chosen on the validation split (by its own loss by default, or by the shared safety cross-entropy). Every run
/// starts from a fresh copy of the aligned model.
/// </summary>
public static class TargetedCompletionComparison
{
    /// <summary>Runs the comparison.</summary>
    /// <param name="createStudent">Returns a fresh copy of the aligned model (called once per run).</param>
    /// <param name="aligned">The frozen aligned model.</param>
    /// <param name="baseModel">The frozen base model (needed for targeted completion and the U metrics).</param>
    /// <param name="harmful">Harmful triples (split into training and validation here).</param>
    /// <param name="benign">Benign pairs (split likewise).</param>
    /// <param name="encoder">Encoder for text records; null when pre-tokenized.</param>
    /// <param name="options">Options (validated here); null for the defaults.</param>
    /// <param name="logger">Logger, or null.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The results.</returns>
    public static ComparisonResult Run(Func<ICausalLanguageModel> createStudent, ICausalLanguageModel aligned, ICausalLanguageModel? baseModel,
        IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<DatasetRecord> benign, IConversationEncoder? encoder,
        ComparisonOptions? options = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(createStudent);
        ArgumentNullException.ThrowIfNull(aligned);
        options = (options ?? new ComparisonOptions()).Validate();
        var shared = options.Training;
        var loop = shared.EffectiveTrainer;
        var (harmTrain, harmVal) = Split(harmful, options.ValidationFraction, loop.Seed, "harmful");
        var (benTrain, benVal) = Split(benign, options.ValidationFraction, loop.Seed + 1, "benign");
        int batch = loop.MicroBatchSize;
        var reference = AlignmentMetrics.Measure(aligned, aligned, baseModel, harmVal, benVal, encoder, shared.Method, options.LateFrom, batch, loop.Seed);
        var entries = new List<ComparisonEntry>();
        foreach (var objective in options.Objectives)
        {
            var runLoop = loop with { Beta1 = objective == AlignmentObjective.Constrained && options.ConstrainedUsesBeta1Half ? 0.5 : loop.Beta1 };
            var candidates = new List<ComparisonCandidate>();
            ComparisonCandidate? best = null;
            ICausalLanguageModel? bestModel = null;
            TrainingResult? bestTraining = null;
            foreach (var lr in options.LearningRates)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var runOptions = shared with { Objective = objective, Trainer = runLoop with { LearningRate = lr, CheckpointDirectory = null, CheckpointEvery = 0 } };
                var student = createStudent();
                try
                {
                    if (runOptions.Lora is { } lora)
                    {
                        if (student is not DecoderOnlyCausalLM decoder) throw new ArgumentException("LoRA in a comparison needs students of the built-in model families (DecoderOnlyCausalLM).", nameof(createStudent));
                        LoraApplier.Apply(decoder, lora);
                    }
                    var data = runOptions.CreateData(harmTrain, benTrain, encoder);
                    var trainingObjective = runOptions.CreateObjective();
                    var teachers = TargetedCompletionTrainer.Teachers(trainingObjective, aligned, baseModel);
                    TrainingResult result;
                    double valLoss;
                    using (var trainer = new Trainer(student, trainingObjective, runOptions.EffectiveTrainer, teachers, logger))
                    {
                        result = trainer.Train(data, null, cancellationToken);
                        valLoss = trainer.EvaluateLoss(ValidationExamples(harmVal, benVal, encoder, runOptions)).Loss;
                    }
                    var metrics = AlignmentMetrics.Measure(student, aligned, baseModel, harmVal, benVal, encoder, shared.Method, options.LateFrom, batch, loop.Seed);
                    var candidate = new ComparisonCandidate(lr, valLoss, metrics, result.History.Count > 0 ? result.History[^1].Loss : double.NaN);
                    candidates.Add(candidate);
                    logger?.LogInformation("compare {Objective} lr {Lr:G3}: val-loss {Val:F5} safety-ce {Ce:F5} benign-kl {Kl:F5} U-late {U}",
                        AlignmentObjectives.Name(objective), lr, valLoss, metrics.SafetyCrossEntropy, metrics.BenignKl, metrics.IncompletenessLate);
                    if (best is null || Score(candidate, options.SelectBy) < Score(best, options.SelectBy))
                    {
                        bestModel?.Dispose();
                        best = candidate; bestModel = student; bestTraining = result;
                        student = null!;
                    }
                }
                finally
                {
                    student?.Dispose();
                }
            }
            if (!options.KeepModels) { bestModel?.Dispose(); bestModel = null; }
            entries.Add(new ComparisonEntry(objective, best!, candidates, bestTraining!, bestModel));
        }
        return new ComparisonResult(entries, reference, harmVal.Count, benVal.Count);
    }

    private static double Score(ComparisonCandidate c, ComparisonSelection by)
    {
        double s = by == ComparisonSelection.OwnObjective ? c.ValidationLoss : c.Metrics.SafetyCrossEntropy;
        return double.IsNaN(s) ? double.PositiveInfinity : s;
    }

    /// <summary>Validation examples of an objective: harmful rows with its context choice (fixed draws) and benign rows, tagged by source.</summary>
    internal static IReadOnlyList<TrainingExample> ValidationExamples(IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<DatasetRecord> benign,
        IConversationEncoder? encoder, TargetedCompletionTrainerOptions options)
    {
        var hb = options.HarmfulBuilder(encoder);
        var bb = new SftExampleBuilder(encoder);
        var list = new List<TrainingExample>();
        list.AddRange(harmful.Select((r, i) => hb.Build(r, new Random(TrainingData.Mix(options.EffectiveTrainer.Seed, i, 0, 0, 0x5afe))) with { Source = TrainingSources.Harmful }));
        list.AddRange(benign.Select(r => bb.Build(r, new Random(0)) with { Source = TrainingSources.Benign }));
        return list;
    }

    /// <summary>Deterministic split: a seeded shuffle, the first max(1, round(fraction * n)) records for validation.</summary>
    internal static (IReadOnlyList<DatasetRecord> Train, IReadOnlyList<DatasetRecord> Validation) Split(IReadOnlyList<DatasetRecord> records, double fraction, int seed, string what)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count < 2) throw new ArgumentException($"The {what} data has {records.Count} record(s); a comparison needs at least 2 (training and validation).", nameof(records));
        var order = Enumerable.Range(0, records.Count).ToArray();
        new Random(seed).Shuffle(order);
        int n = Math.Clamp((int)Math.Round(fraction * records.Count), 1, records.Count - 1);
        return (order.Skip(n).Select(i => records[i]).ToArray(), order.Take(n).Select(i => records[i]).ToArray());
    }
}
