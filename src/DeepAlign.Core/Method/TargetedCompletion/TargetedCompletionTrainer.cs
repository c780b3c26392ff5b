using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Text;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using DeepAlign.Data;
using static TorchSharp.torch;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// Trains an aligned model with targeted completion or one of Qi et al.'s baselines (docs/targeted-completion.md) on
/// the training foundation's loop (<see cref="Trainer"/>); choosing the objective is one option
/// (<see cref="TargetedCompletionTrainerOptions.Objective"/>). Like TRL's trainers, one instance holds the student, the
/// frozen models and the options; <see cref="Train"/> runs the loop. The aligned and base models are frozen teachers
/// (no gradient, evaluation mode); the student is a separate copy of the aligned model, trained in full or through LoRA
/// (apply the adapters to it first). <see cref="TrainFromFolders"/> does the whole folder-to-folder run.
/// </summary>
public sealed class TargetedCompletionTrainer
{
    private readonly ICausalLanguageModel _student;
    private readonly IReadOnlyDictionary<string, ICausalLanguageModel> _teachers;
    private readonly ILogger? _logger;

    /// <summary>Creates the trainer and freezes the teachers the objective needs.</summary>
    /// <param name="student">pi_theta, a copy of the aligned model (not the teacher object itself).</param>
    /// <param name="aligned">The frozen aligned model (teacher and pi_ref).</param>
    /// <param name="baseModel">The frozen base model (targeted completion only; may be null otherwise).</param>
    /// <param name="options">Options (validated here).</param>
    /// <param name="logger">Logger, or null.</param>
    /// <exception cref="ArgumentException">The options are invalid, or the objective needs the base model and there is none.</exception>
    public TargetedCompletionTrainer(ICausalLanguageModel student, ICausalLanguageModel aligned, ICausalLanguageModel? baseModel,
        TargetedCompletionTrainerOptions options, ILogger? logger = null)
    {
        _student = student ?? throw new ArgumentNullException(nameof(student));
        ArgumentNullException.ThrowIfNull(aligned);
        Options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        Objective = Options.CreateObjective();
        _teachers = Teachers(Objective, aligned, baseModel);
        _logger = logger;
    }

    /// <summary>The options.</summary>
    public TargetedCompletionTrainerOptions Options { get; }

    /// <summary>The objective being trained.</summary>
    public ITrainingObjective Objective { get; }

    /// <summary>Trains the student in place on <paramref name="data"/> (e.g. <see cref="TargetedCompletionTrainerOptions.CreateData"/>).</summary>
    /// <param name="data">The training stream.</param>
    /// <param name="progress">Per-step progress, or null.</param>
    /// <param name="cancellationToken">Cancellation (a checkpoint is written first when checkpointing is on).</param>
    /// <returns>The loop's result.</returns>
    public TrainingResult Train(TrainingData data, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var trainer = new Trainer(_student, Objective, Options.EffectiveTrainer, _teachers, _logger);
        return trainer.Train(data, progress, cancellationToken);
    }

    /// <summary>The frozen teachers an objective needs (aligned, and base for targeted completion), frozen here.</summary>
    internal static IReadOnlyDictionary<string, ICausalLanguageModel> Teachers(ITrainingObjective objective, ICausalLanguageModel aligned, ICausalLanguageModel? baseModel)
    {
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(aligned);
        var teachers = new Dictionary<string, ICausalLanguageModel>(StringComparer.Ordinal);
        foreach (var name in objective.RequiredTeachers)
        {
            var model = name switch
            {
                TeacherNames.Aligned => aligned,
                TeacherNames.Base => baseModel ?? throw new ArgumentException($"Objective '{objective.Name}' needs the base model.", nameof(baseModel)),
                _ => throw new ArgumentException($"Objective '{objective.Name}' needs an unknown teacher '{name}'.", nameof(objective)),
            };
            Freeze(model);
            teachers[name] = model;
        }
        return teachers;
    }

    /// <summary>
    /// The whole folder-to-folder run: loads the aligned model twice (frozen teacher and student) and the base model
    /// (targeted completion only), checks that they share the token-to-id map, reads the JSONL data, runs the gradient
    /// probe when <see cref="TargetedCompletionTrainerOptions.ProbeSequences"/> asks for it, applies LoRA when configured,
    /// trains (checkpoints in OutputDirectory/checkpoints; a rerun resumes) and exports a Hugging Face folder (LoRA
    /// merged) plus the PEFT adapter under LoRA.
    /// </summary>
    /// <param name="paths">Model folders, data files and output folder.</param>
    /// <param name="options">Options; a null <see cref="TrainerOptions.CheckpointDirectory"/> becomes OutputDirectory/checkpoints.</param>
    /// <param name="device">Device (null: automatic).</param>
    /// <param name="dtype">Weight dtype (null: float32 on CPU, else the config's).</param>
    /// <param name="logger">Logger, or null.</param>
    /// <param name="progress">Per-step progress, or null.</param>
    /// <param name="probeProgress">Sequences done by the probe, or null.</param>
    /// <param name="cancellationToken">Cancellation (a checkpoint is written first).</param>
    /// <returns>Where the model went, the loop's result, and the probe's norms when it ran.</returns>
    /// <exception cref="ArgumentException">The options are invalid or targeted completion has no base model.</exception>
    /// <exception cref="VocabularyMismatchException">The aligned and base models do not share a tokenizer.</exception>
    /// <exception cref="IOException">The output path is an existing file.</exception>
    public static TrainingRun TrainFromFolders(TargetedCompletionPaths paths, TargetedCompletionTrainerOptions options, Device? device = null,
        ScalarType? dtype = null, ILogger? logger = null, IProgress<TrainingProgress>? progress = null, IProgress<int>? probeProgress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        bool needsBase = options.Objective == AlignmentObjective.TargetedCompletion;
        if (needsBase && paths.BaseModel is null)
            throw new ArgumentException("Targeted completion needs the base model folder (BaseModel / --base).", nameof(paths));
        TrainingExport.CheckOutputDirectory(paths.OutputDirectory);
        var dev = device ?? TorchRuntime.ResolveDevice(null);
        ConversationEncoder? encoder = OptionalConversationEncoder.FromFolder(paths.AlignedModel); // pre-tokenized data needs no chat template
        if (needsBase) VocabularyCheck.EnsureSameTokenMap(paths.AlignedModel, paths.BaseModel!);
        var harmful = DatasetReader.ReadFile(paths.HarmfulData);
        var benign = DatasetReader.ReadFile(paths.BenignData);

        var trainerOptions = TrainingExport.WithCheckpointDefault(options.EffectiveTrainer, paths.OutputDirectory);
        var method = options.Method.VocabularySize is null && encoder is not null ? options.Method with { VocabularySize = encoder.VocabSize } : options.Method;
        options = options with { Trainer = trainerOptions, Method = method };

        using var student = CausalLanguageModel.FromPretrained(paths.AlignedModel, dev, dtype);
        using var aligned = CausalLanguageModel.FromPretrained(paths.AlignedModel, dev, dtype);
        using var baseModel = needsBase ? CausalLanguageModel.FromPretrained(paths.BaseModel!, dev, dtype) : null;
        if (needsBase && baseModel!.Config.VocabSize < (options.Method.VocabularySize ?? aligned.Config.VocabSize))
            throw new InvalidDataException($"The base model ({paths.BaseModel}) has {baseModel.Config.VocabSize} logits, fewer than the vocabulary of the aligned model ({paths.AlignedModel}).");
        (IReadOnlyList<double> Norms, double Seconds, string File, Detection.GradientProbeResult Result)? probe = null;
        if (options.ProbeSequences is int count)
        {
            // On the student before any update or adapter: the aligned weights, with gradients enabled.
            probe = TargetedCompletionProbe.Run(student, harmful, encoder, options.Method.VocabularySize, count, options.Method.MaxPrefixLength,
                trainerOptions.MaxSequenceLength, paths.OutputDirectory, probeProgress, cancellationToken);
            options = options with { Method = options.Method with { ProbeNorms = probe.Value.Norms }, ProbeSequences = null };
        }
        if (options.Lora is { } lora) LoraApplier.Apply(student, lora);
        var data = options.CreateData(harmful, benign, encoder);
        if (options.Epochs is double epochs)
            options = options with { Trainer = trainerOptions with { MaxSteps = data.StepsFor(epochs, trainerOptions.MicroBatchSize * trainerOptions.GradientAccumulationSteps) } };
        var result = new TargetedCompletionTrainer(student, aligned, baseModel, options, logger).Train(data, progress, cancellationToken);
        string? adapterDir = TrainingExport.SaveAll(student, options.Lora, paths.OutputDirectory, paths.AlignedModel);
        return new TrainingRun(Path.GetFullPath(paths.OutputDirectory), adapterDir, result)
        {
            ProbeNorms = probe?.Norms, ProbeSeconds = probe?.Seconds, ProbeNormsFile = probe?.File,
        };
    }

    private static void Freeze(ICausalLanguageModel model)
    {
        foreach (var (_, p) in model.NamedParameters()) p.requires_grad = false;
        model.SetTrainingMode(false);
    }
}
