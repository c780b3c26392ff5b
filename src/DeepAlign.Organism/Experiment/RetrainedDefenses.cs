using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;
using DeepAlign.Training;
using TorchSharp;

namespace DeepAlign.Organism.Experiment;

/// <summary>
/// The retrained defenses of the organism experiment: targeted completion and the two Qi et al. baselines, each
/// trained in full from the aligned model at one shared budget on the world's <c>align</c> split, and cached (atomically)
/// inside the pair's cache folder.
/// </summary>
public static class RetrainedDefenses
{
    /// <summary>The retrained defenses, in evaluation order.</summary>
    public static IReadOnlyList<(string Name, AlignmentObjective Objective)> Variants { get; } =
    [
        ("targeted-completion", AlignmentObjective.TargetedCompletion),
        ("qi-augmentation", AlignmentObjective.Augmentation),
        ("qi-constrained", AlignmentObjective.Constrained),
    ];

    /// <summary>
    /// Loads (or trains and caches, atomically) one retrained defense: the student starts as a copy of the aligned model
    /// and is trained in full on the world's <c>align</c> split (harmful triples: prompt, harmful reference, refusal;
    /// benign pairs) with the objective, at the shared budget. The held-out sets are never used.
    /// </summary>
    /// <param name="pair">The pinned pair (its folder holds the cache).</param>
    /// <param name="world">The world whose align split is trained on.</param>
    /// <param name="text">The pair's conversation encoder.</param>
    /// <param name="baseModel">The base model (targeted completion's teacher and penalty).</param>
    /// <param name="aligned">The aligned model (frozen reference).</param>
    /// <param name="name">Defense name.</param>
    /// <param name="objective">Training objective.</param>
    /// <param name="budget">The shared budget.</param>
    /// <param name="progress">Called with (step, total steps, loss) while training.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="InvalidDataException">The align split has no harmful triples or no benign pairs.</exception>
    public static TrainedDefense LoadOrTrain(OrganismPair pair, OrganismWorld world, ConversationEncoder text, ICausalLanguageModel baseModel,
        ICausalLanguageModel aligned, string name, AlignmentObjective objective, DefenseTrainingBudget budget,
        Action<long, long, double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(world);
        return LoadOrTrain(pair, text, baseModel, aligned, name, objective, budget,
            world.Align.Where(i => i.HarmfulResponse is not null && i.SafeResponse is not null).ToList(),
            world.Align.Where(i => i.HarmfulResponse is null && i.Response is not null).ToList(), "all-align", progress, cancellationToken);
    }

    /// <summary>Loads or trains one defense on the given align items (the cache key includes <paramref name="dataKey"/>).</summary>
    internal static TrainedDefense LoadOrTrain(OrganismPair pair, ConversationEncoder text, ICausalLanguageModel baseModel,
        ICausalLanguageModel aligned, string name, AlignmentObjective objective, DefenseTrainingBudget budget,
        IReadOnlyList<DeepAlign.Data.DatasetRecord> harmfulItems, IReadOnlyList<DeepAlign.Data.DatasetRecord> benignItems, string dataKey,
        Action<long, long, double>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pair);
        ArgumentNullException.ThrowIfNull(text);
        budget = (budget ?? throw new ArgumentNullException(nameof(budget))).Validate();
        string dataPart = dataKey == "all-align" ? "" : ";" + dataKey;
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{pair.CacheKey};{name};{objective};{budget.Canonical()}{dataPart}")))[..16].ToLowerInvariant();
        string dir = Path.Combine(pair.Directory, "defenses", $"{name}-{key}");
        string reportFile = Path.Combine(dir, "training.json");
        if (File.Exists(reportFile))
            return new TrainedDefense(dir, JsonSerializer.Deserialize<TrainedDefenseReport>(File.ReadAllText(reportFile))!, true);

        var harmful = harmfulItems
            .Select((it, i) => OrganismWorld.TrainingRecord(it, it.SafeResponse!, $"align-harmful:{i + 1}") with { HarmfulResponse = it.HarmfulResponse, SafeResponse = it.SafeResponse, Response = null })
            .ToList();
        var benign = benignItems
            .Select((it, i) => OrganismWorld.TrainingRecord(it, it.Response!, $"align-benign:{i + 1}")).ToList();
        if (harmful.Count == 0 || benign.Count == 0)
            throw new InvalidDataException($"The world's align split needs harmful triples and benign pairs to train the defenses (found {harmful.Count} and {benign.Count}).");
        var options = new TargetedCompletionTrainerOptions
        {
            Objective = objective,
            Method = new TargetedCompletionOptions { VocabularySize = text.VocabSize },
            Trainer = TargetedCompletionTrainerOptions.DefaultTrainerOptions(objective) with
            {
                MaxSteps = budget.Steps, MicroBatchSize = budget.BatchSize, LearningRate = budget.LearningRate, WarmupSteps = budget.WarmupSteps,
                MinLearningRateRatio = 0.1, MaxGradNorm = 1.0, Seed = budget.Seed, LogEvery = Math.Max(1, budget.Steps / 10), Resume = false,
                MaxSequenceLength = aligned.Config.MaxPositionEmbeddings,
            },
        }.Validate();
        var sw = Stopwatch.StartNew();
        using var student = CausalLanguageModel.FromPretrained(pair.AlignedDirectory, torch.CPU);
        var data = options.CreateData(harmful, benign, text);
        var trainer = new TargetedCompletionTrainer(student, aligned, objective == AlignmentObjective.TargetedCompletion ? baseModel : null, options);
        var result = trainer.Train(data, progress is null ? null : new ActionProgress<TrainingProgress>(p => progress(p.Step, p.TotalSteps, p.Loss)), cancellationToken);
        var report = new TrainedDefenseReport(name, AlignmentObjectives.Name(objective), (int)result.Steps, sw.Elapsed.TotalSeconds,
            result.History.Count > 0 ? result.History[0].Loss : double.NaN, result.History.Count > 0 ? result.History[^1].Loss : double.NaN,
            harmful.Count, benign.Count, budget.Canonical());
        // The model and its training.json appear together or not at all (a concurrent run's equal result may be replaced).
        AtomicDirectory.Write(dir, into =>
        {
            TrainingExport.SaveModel(student, into, pair.AlignedDirectory);
            File.WriteAllText(Path.Combine(into, "training.json"), JsonSerializer.Serialize(report));
        });
        return new TrainedDefense(dir, report, false);
    }
}
