using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Text;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using DeepAlign.Data;
using static TorchSharp.torch;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>The training objectives of the targeted-completion trainer (METHOD.md sections 3 and 4).</summary>
public enum AlignmentObjective
{
    /// <summary>Targeted completion (<see cref="TargetedCompletionObjective"/>): safety recovery + hybrid teacher + penalty + utility anchor.</summary>
    TargetedCompletion,

    /// <summary>Qi et al.'s safety-recovery augmentation (<see cref="AugmentationObjective"/>, their Eq. 2).</summary>
    Augmentation,

    /// <summary>Qi et al.'s token-wise constrained objective (<see cref="ConstrainedTrainingObjective"/>, their Eq. 3).</summary>
    Constrained,

    /// <summary>Plain SFT (<see cref="SftObjective"/>) on (x, r) and the benign pairs.</summary>
    Sft,
}

/// <summary>Names of <see cref="AlignmentObjective"/> values as on the command line.</summary>
public static class AlignmentObjectives
{
    /// <summary>Every objective, in a fixed order.</summary>
    public static IReadOnlyList<AlignmentObjective> All { get; } =
        new[] { AlignmentObjective.TargetedCompletion, AlignmentObjective.Augmentation, AlignmentObjective.Constrained, AlignmentObjective.Sft };

    /// <summary>The command-line name: <c>targeted-completion</c>, <c>augmentation</c>, <c>constrained</c> or <c>sft</c>.</summary>
    /// <param name="objective">The objective.</param>
    /// <returns>Its name.</returns>
    public static string Name(AlignmentObjective objective) => objective switch
    {
        AlignmentObjective.TargetedCompletion => "targeted-completion",
        AlignmentObjective.Augmentation => "augmentation",
        AlignmentObjective.Constrained => "constrained",
        AlignmentObjective.Sft => "sft",
        _ => throw new ArgumentOutOfRangeException(nameof(objective), objective, "Unknown objective."),
    };

    /// <summary>Parses a command-line name (case-insensitive).</summary>
    /// <param name="name">One of the names of <see cref="Name"/>.</param>
    /// <returns>The objective.</returns>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static AlignmentObjective Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var o in All)
            if (string.Equals(Name(o), name.Trim(), StringComparison.OrdinalIgnoreCase)) return o;
        throw new ArgumentException($"Unknown objective '{name}'; choose one of {string.Join(", ", All.Select(Name))}.", nameof(name));
    }
}

/// <summary>Settings of <see cref="TargetedCompletionTrainer"/>: which objective, its options, the loop and LoRA.</summary>
public sealed record TargetedCompletionTrainerOptions
{
    /// <summary>The objective. Default <see cref="AlignmentObjective.TargetedCompletion"/>.</summary>
    public AlignmentObjective Objective { get; init; } = AlignmentObjective.TargetedCompletion;

    /// <summary>
    /// Targeted-completion options; also the data settings every objective shares (p0, K_max, the harmful : benign
    /// mix, the vocabulary cut).
    /// </summary>
    public TargetedCompletionOptions Method { get; init; } = new();

    /// <summary>beta schedule of the constrained objective (Qi et al.'s by default).</summary>
    public ConstrainedBetaSchedule ConstrainedBetas { get; init; } = new();

    /// <summary>
    /// Whether harmful triples become safety-recovery contexts (random K_pre) or plain (x, r) pairs. Null (default):
    /// safety recovery for targeted completion and augmentation, plain pairs for constrained and sft.
    /// </summary>
    public bool? SafetyRecoveryContexts { get; init; }

    /// <summary>The training loop; null uses <see cref="TargetedCompletionTrainer.DefaultTrainerOptions"/> for the objective.</summary>
    public TrainerOptions? Trainer { get; init; }

    /// <summary>LoRA adapters on the student (METHOD.md defaults: rank 16, alpha 32, dropout 0.05, q/k/v/o/gate/up/down); null (default): full fine-tuning.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>The effective loop settings.</summary>
    public TrainerOptions EffectiveTrainer => Trainer ?? TargetedCompletionTrainer.DefaultTrainerOptions(Objective);

    /// <summary>The effective context choice.</summary>
    public bool EffectiveSafetyRecovery => SafetyRecoveryContexts ?? Objective is AlignmentObjective.TargetedCompletion or AlignmentObjective.Augmentation;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public TargetedCompletionTrainerOptions Validate()
    {
        if (!Enum.IsDefined(Objective)) throw new ArgumentException($"TargetedCompletionTrainerOptions.Objective has an unknown value {(int)Objective}.", nameof(Objective));
        if (Method is null) throw new ArgumentException("TargetedCompletionTrainerOptions.Method must be set.", nameof(Method));
        if (ConstrainedBetas is null) throw new ArgumentException("TargetedCompletionTrainerOptions.ConstrainedBetas must be set.", nameof(ConstrainedBetas));
        Method.Validate();
        ConstrainedBetas.Validate();
        EffectiveTrainer.Validate();
        Lora?.Validate();
        return this;
    }
}

/// <summary>Files of a folder-based run (<see cref="TargetedCompletionTrainer.TrainFromFolders"/>).</summary>
/// <param name="AlignedModel">The aligned model's Hugging Face folder (pi_a; the student starts from it).</param>
/// <param name="BaseModel">The base model's folder (pi_b); needed by targeted completion only.</param>
/// <param name="HarmfulData">JSONL of harmful triples (prompt, harmful_response, safe_response).</param>
/// <param name="BenignData">JSONL of benign pairs (prompt, response).</param>
/// <param name="OutputDirectory">Where the trained model (merged weights + tokenizer files), adapter/ (LoRA) and checkpoints/ go.</param>
public sealed record TargetedCompletionPaths(string AlignedModel, string? BaseModel, string HarmfulData, string BenignData, string OutputDirectory);

/// <summary>The outcome of a folder-based run.</summary>
/// <param name="OutputDirectory">The exported Hugging Face folder.</param>
/// <param name="AdapterDirectory">The PEFT adapter folder under LoRA, else null.</param>
/// <param name="Training">The loop's result (history, throughput, checkpoint).</param>
public sealed record TargetedCompletionRun(string OutputDirectory, string? AdapterDirectory, TrainingResult Training);

/// <summary>
/// Trains an aligned model with targeted completion or one of Qi et al.'s baselines (METHOD.md sections 3 and 4) on
/// the training foundation's loop (<see cref="Trainer"/>); choosing the objective is one option
/// (<see cref="TargetedCompletionTrainerOptions.Objective"/>). The aligned and base models are frozen teachers (no
/// gradient, evaluation mode); the student is a separate copy of the aligned model, trained in full or through LoRA.
/// </summary>
public static class TargetedCompletionTrainer
{
    /// <summary>
    /// Loop defaults per objective: <see cref="TrainerOptions"/> defaults (lr 2e-5, cosine, AdamW beta1 0.9), except
    /// AdamW beta1 = 0.5 for the constrained objective (Qi et al.).
    /// </summary>
    /// <param name="objective">The objective.</param>
    /// <returns>The options.</returns>
    public static TrainerOptions DefaultTrainerOptions(AlignmentObjective objective) =>
        objective == AlignmentObjective.Constrained ? new TrainerOptions { Beta1 = 0.5 } : new TrainerOptions();

    /// <summary>The objective selected by <paramref name="options"/>.</summary>
    /// <param name="options">Options (validated here).</param>
    /// <returns>A new objective.</returns>
    public static ITrainingObjective CreateObjective(TargetedCompletionTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int? vocab = options.Method.VocabularySize;
        return options.Objective switch
        {
            AlignmentObjective.TargetedCompletion => new TargetedCompletionObjective(options.Method),
            AlignmentObjective.Augmentation => new AugmentationObjective(vocab),
            AlignmentObjective.Constrained => new ConstrainedTrainingObjective(options.ConstrainedBetas, vocab),
            AlignmentObjective.Sft => new SftObjective(vocab),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Objective, "Unknown objective."),
        };
    }

    /// <summary>The example builder of the harmful triples: safety-recovery contexts or plain (x, r) pairs.</summary>
    /// <param name="options">Options.</param>
    /// <param name="encoder">Encoder for text records; null when every line is pre-tokenized.</param>
    /// <returns>The builder.</returns>
    public static SafetyRecoveryExampleBuilder HarmfulBuilder(TargetedCompletionTrainerOptions options, IConversationEncoder? encoder)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new SafetyRecoveryExampleBuilder(encoder,
            options.EffectiveSafetyRecovery ? options.Method.NoPrefixProbability : 1.0, options.Method.MaxPrefixLength);
    }

    /// <summary>
    /// The training stream: harmful triples (source <c>harmful</c>) and benign pairs (source <c>benign</c>) mixed
    /// <see cref="TargetedCompletionOptions.HarmfulShare"/> : <see cref="TargetedCompletionOptions.BenignShare"/>
    /// (1 : 4) in every run of draws.
    /// </summary>
    /// <param name="harmful">Harmful triples.</param>
    /// <param name="benign">Benign pairs.</param>
    /// <param name="encoder">Encoder for text records; null when pre-tokenized.</param>
    /// <param name="options">Options (validated here).</param>
    /// <returns>The stream (seeded by the loop's seed).</returns>
    public static TrainingData CreateData(IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<DatasetRecord> benign, IConversationEncoder? encoder,
        TargetedCompletionTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(harmful);
        ArgumentNullException.ThrowIfNull(benign);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new TrainingData(new[]
        {
            new DataSource(TrainingSources.Harmful, harmful, HarmfulBuilder(options, encoder), options.Method.HarmfulShare),
            new DataSource(TrainingSources.Benign, benign, new SftExampleBuilder(encoder), options.Method.BenignShare),
        }, options.EffectiveTrainer.Seed);
    }

    /// <summary>The frozen teachers the objective needs (aligned, and base for targeted completion), frozen here.</summary>
    /// <param name="objective">The objective.</param>
    /// <param name="aligned">pi_a (a model separate from the student).</param>
    /// <param name="baseModel">pi_b, or null when the objective does not need it.</param>
    /// <returns>Teachers by name.</returns>
    public static IReadOnlyDictionary<string, ICausalLanguageModel> Teachers(ITrainingObjective objective, ICausalLanguageModel aligned, ICausalLanguageModel? baseModel)
    {
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(aligned);
        var teachers = new Dictionary<string, ICausalLanguageModel>(StringComparer.Ordinal);
        foreach (var name in objective.RequiredTeachers)
        {
            var model = name switch
            {
                TargetedCompletionObjective.AlignedTeacher => aligned,
                TargetedCompletionObjective.BaseTeacher => baseModel ?? throw new ArgumentException($"Objective '{objective.Name}' needs the base model.", nameof(baseModel)),
                _ => throw new ArgumentException($"Objective '{objective.Name}' needs an unknown teacher '{name}'.", nameof(objective)),
            };
            Freeze(model);
            teachers[name] = model;
        }
        return teachers;
    }

    /// <summary>
    /// Trains <paramref name="student"/> in place (apply LoRA to it first for adapter training) on
    /// <paramref name="data"/> with the objective of <paramref name="options"/>.
    /// </summary>
    /// <param name="student">pi_theta, a copy of the aligned model (not the teacher object itself).</param>
    /// <param name="aligned">The frozen aligned model (teacher and pi_ref).</param>
    /// <param name="baseModel">The frozen base model (targeted completion only; may be null otherwise).</param>
    /// <param name="data">The stream from <see cref="CreateData"/>.</param>
    /// <param name="options">Options (validated here).</param>
    /// <param name="logger">Logger, or null.</param>
    /// <param name="progress">Per-step progress, or null.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The loop's result.</returns>
    public static TrainingResult Train(ICausalLanguageModel student, ICausalLanguageModel aligned, ICausalLanguageModel? baseModel, TrainingData data,
        TargetedCompletionTrainerOptions options, ILogger? logger = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(data);
        var objective = CreateObjective(options);
        var teachers = Teachers(objective, aligned, baseModel);
        using var trainer = new Trainer(student, objective, options.EffectiveTrainer, teachers, logger);
        return trainer.Train(data, progress, cancellationToken);
    }

    /// <summary>
    /// The whole folder-to-folder run: loads the aligned model twice (frozen teacher and student) and the base model
    /// (targeted completion only), checks that they share the token-to-id map, reads the JSONL data, applies LoRA when
    /// configured, trains (checkpoints in OutputDirectory/checkpoints; a rerun resumes) and exports a Hugging Face
    /// folder (LoRA merged) plus the PEFT adapter under LoRA.
    /// </summary>
    /// <param name="paths">Model folders, data files and output folder.</param>
    /// <param name="options">Options; a null <see cref="TrainerOptions.CheckpointDirectory"/> becomes OutputDirectory/checkpoints.</param>
    /// <param name="device">Device (null: automatic).</param>
    /// <param name="dtype">Weight dtype (null: float32 on CPU, else the config's).</param>
    /// <param name="logger">Logger, or null.</param>
    /// <param name="progress">Per-step progress, or null.</param>
    /// <param name="cancellationToken">Cancellation (a checkpoint is written first).</param>
    /// <returns>Where the model went, and the loop's result.</returns>
    public static TargetedCompletionRun TrainFromFolders(TargetedCompletionPaths paths, TargetedCompletionTrainerOptions options, Device? device = null,
        ScalarType? dtype = null, ILogger? logger = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        bool needsBase = options.Objective == AlignmentObjective.TargetedCompletion;
        if (needsBase && paths.BaseModel is null)
            throw new ArgumentException("Targeted completion needs the base model folder (BaseModel / --base).", nameof(paths));
        var dev = device ?? TorchRuntime.ResolveDevice(null);
        ConversationEncoder? encoder = File.Exists(Path.Combine(paths.AlignedModel, "tokenizer.json")) ? ConversationEncoder.FromPretrained(paths.AlignedModel) : null;
        if (needsBase) VocabularyCheck.EnsureSameTokenMap(paths.AlignedModel, paths.BaseModel!);
        var harmful = JsonlDatasetReader.ReadFile(paths.HarmfulData);
        var benign = JsonlDatasetReader.ReadFile(paths.BenignData);

        var trainerOptions = options.EffectiveTrainer;
        if (trainerOptions.CheckpointDirectory is null) trainerOptions = trainerOptions with { CheckpointDirectory = Path.Combine(paths.OutputDirectory, "checkpoints") };
        var method = options.Method.VocabularySize is null && encoder is not null ? options.Method with { VocabularySize = encoder.VocabSize } : options.Method;
        options = options with { Trainer = trainerOptions, Method = method };

        using var student = CausalLanguageModel.FromPretrained(paths.AlignedModel, dev, dtype);
        using var aligned = CausalLanguageModel.FromPretrained(paths.AlignedModel, dev, dtype);
        using var baseModel = needsBase ? CausalLanguageModel.FromPretrained(paths.BaseModel!, dev, dtype) : null;
        if (needsBase && baseModel!.Config.VocabSize < (options.Method.VocabularySize ?? aligned.Config.VocabSize))
            throw new InvalidDataException($"The base model ({paths.BaseModel}) has {baseModel.Config.VocabSize} logits, fewer than the vocabulary of the aligned model ({paths.AlignedModel}).");
        if (options.Lora is { } lora) LoraApplier.Apply(student, lora);
        var data = CreateData(harmful, benign, encoder, options);
        var result = Train(student, aligned, baseModel, data, options, logger, progress, cancellationToken);
        string? adapterDir = null;
        if (options.Lora is { } l)
        {
            adapterDir = Path.Combine(paths.OutputDirectory, "adapter");
            TrainingExport.SaveAdapter(student, l, adapterDir, paths.AlignedModel);
        }
        TrainingExport.SaveModel(student, paths.OutputDirectory, paths.AlignedModel);
        return new TargetedCompletionRun(Path.GetFullPath(paths.OutputDirectory), adapterDir, result);
    }

    private static void Freeze(ICausalLanguageModel model)
    {
        foreach (var (_, p) in model.NamedParameters()) p.requires_grad = false;
        model.SetTrainingMode(false);
    }
}
