using System.Globalization;
using System.Text;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using DeepAlign.Data;
using DeepAlign.Text;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>How the comparison picks each objective's learning rate.</summary>
public enum ComparisonSelection
{
    /// <summary>Lowest validation loss of the objective's own loss (default; each method tuned as its authors would).</summary>
    OwnObjective,

    /// <summary>Lowest shared safety cross-entropy (<see cref="AlignmentMetricsResult.SafetyCrossEntropy"/>) on the validation split.</summary>
    SafetyCrossEntropy,
}

/// <summary>Settings of <see cref="TargetedCompletionComparison"/>.</summary>
public sealed record ComparisonOptions
{
    /// <summary>Objectives to train. Default all four.</summary>
    public IReadOnlyList<AlignmentObjective> Objectives { get; init; } = AlignmentObjectives.All;

    /// <summary>The learning-rate grid every objective is searched over. Default 1e-5, 2e-5, 5e-5 (around Qi et al.'s 2e-5; our choice).</summary>
    public IReadOnlyList<double> LearningRates { get; init; } = new[] { 1e-5, 2e-5, 5e-5 };

    /// <summary>Share of each dataset held out for validation (at least one record each). Default 0.1 (our choice).</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>How the learning rate is picked. Default <see cref="ComparisonSelection.OwnObjective"/>.</summary>
    public ComparisonSelection SelectBy { get; init; } = ComparisonSelection.OwnObjective;

    /// <summary>
    /// Everything else, shared by every run: the loop (steps, batch, schedule, seed; its learning rate is replaced by
    /// the grid), the method options and data settings, LoRA. Its <see cref="TargetedCompletionTrainerOptions.Objective"/>
    /// is replaced per run.
    /// </summary>
    public TargetedCompletionTrainerOptions Training { get; init; } = new();

    /// <summary>Give the constrained objective Qi et al.'s AdamW beta1 = 0.5 (everything else keeps the shared loop's). Default true.</summary>
    public bool ConstrainedUsesBeta1Half { get; init; } = true;

    /// <summary>First response position counted as late in the U_j metrics. Default 6.</summary>
    public int LateFrom { get; init; } = 6;

    /// <summary>Keep each objective's best model in the result (the caller disposes it); false disposes it. Default true.</summary>
    public bool KeepModels { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public ComparisonOptions Validate()
    {
        if (Objectives is null || Objectives.Count == 0) throw new ArgumentException("ComparisonOptions.Objectives must list at least one objective.", nameof(Objectives));
        if (LearningRates is null || LearningRates.Count == 0 || LearningRates.Any(l => !(l > 0) || double.IsInfinity(l)))
            throw new ArgumentException("ComparisonOptions.LearningRates must list positive finite learning rates.", nameof(LearningRates));
        if (!(ValidationFraction > 0 && ValidationFraction < 1)) throw new ArgumentException($"ComparisonOptions.ValidationFraction = {ValidationFraction}: must be in (0, 1).", nameof(ValidationFraction));
        if (!Enum.IsDefined(SelectBy)) throw new ArgumentException($"ComparisonOptions.SelectBy has an unknown value {(int)SelectBy}.", nameof(SelectBy));
        if (Training is null) throw new ArgumentException("ComparisonOptions.Training must be set.", nameof(Training));
        if (LateFrom < 2) throw new ArgumentException($"ComparisonOptions.LateFrom = {LateFrom}: must be >= 2.", nameof(LateFrom));
        Training.Validate();
        return this;
    }
}

/// <summary>One learning rate tried for one objective.</summary>
/// <param name="LearningRate">The peak learning rate.</param>
/// <param name="ValidationLoss">The objective's own loss on the validation split.</param>
/// <param name="Metrics">The shared metrics on the validation split.</param>
/// <param name="FinalTrainingLoss">Loss of the last training step.</param>
public sealed record ComparisonCandidate(double LearningRate, double ValidationLoss, AlignmentMetricsResult Metrics, double FinalTrainingLoss);

/// <summary>One objective's outcome: its chosen learning rate and everything measured.</summary>
/// <param name="Objective">The objective.</param>
/// <param name="Best">The chosen candidate.</param>
/// <param name="Candidates">Every learning rate tried, in grid order.</param>
/// <param name="Training">The loop's result of the chosen run.</param>
/// <param name="Model">The chosen run's model when <see cref="ComparisonOptions.KeepModels"/> is set (the caller disposes it).</param>
public sealed record ComparisonEntry(AlignmentObjective Objective, ComparisonCandidate Best, IReadOnlyList<ComparisonCandidate> Candidates,
    TrainingResult Training, ICausalLanguageModel? Model);

/// <summary>The side-by-side results.</summary>
/// <param name="Entries">One per objective, in the order asked.</param>
/// <param name="Reference">The shared metrics of the untouched aligned model on the same validation split.</param>
/// <param name="ValidationHarmful">Harmful records held out.</param>
/// <param name="ValidationBenign">Benign records held out.</param>
public sealed record ComparisonResult(IReadOnlyList<ComparisonEntry> Entries, AlignmentMetricsResult Reference, int ValidationHarmful, int ValidationBenign)
{
    /// <summary>A plain-text table: objective, chosen lr, validation loss, safety CE, benign KL, U early/late.</summary>
    /// <returns>The table.</returns>
    public string ToTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine("objective            lr         val-loss   safety-ce  benign-kl  U-early  U-late");
        string U(double? u) => u is double x ? x.ToString("F3", CultureInfo.InvariantCulture) : "-";
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{"(aligned)",-20} {"-",-10} {"-",-10} {Reference.SafetyCrossEntropy,-10:F4} {Reference.BenignKl,-10:F4} {U(Reference.IncompletenessEarly),-8} {U(Reference.IncompletenessLate)}"));
        foreach (var e in Entries)
        {
            var m = e.Best.Metrics;
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{AlignmentObjectives.Name(e.Objective),-20} {e.Best.LearningRate,-10:G3} {e.Best.ValidationLoss,-10:F4} {m.SafetyCrossEntropy,-10:F4} {m.BenignKl,-10:F4} {U(m.IncompletenessEarly),-8} {U(m.IncompletenessLate)}"));
        }
        return sb.ToString();
    }
}

/// <summary>
/// Trains several objectives at equal budget and reports them side by side (METHOD.md section 4: "comparisons are
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
                    var data = TargetedCompletionTrainer.CreateData(harmTrain, benTrain, encoder, runOptions);
                    var trainingObjective = TargetedCompletionTrainer.CreateObjective(runOptions);
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
        var hb = TargetedCompletionTrainer.HarmfulBuilder(options, encoder);
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
