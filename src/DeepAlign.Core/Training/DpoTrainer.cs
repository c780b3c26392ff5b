using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using DeepAlign.Data;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// DPO from folders to a folder: loads the starting model (and the reference), reads preference lines, trains with
/// <see cref="DpoObjective"/> on <see cref="Trainer"/> (full or LoRA; checkpoints in OutputDirectory/checkpoints, a rerun
/// resumes) and exports a Hugging Face folder plus the PEFT adapter under LoRA. docs/training.md, "DPO".
/// </summary>
public static class DpoTrainer
{
    /// <summary>
    /// Loop defaults that TRL users expect from <c>DPOConfig</c> over <c>TrainingArguments</c>: learning rate 1e-6,
    /// linear decay, no warmup, 8 pairs per micro-batch, sequences cut at 1024 tokens (TRL's <c>max_length</c>,
    /// keep-start); the other fields are <see cref="TrainerOptions"/>' (AdamW (0.9, 0.999), no weight decay, clipping at
    /// 1.0). LoRA runs usually want a larger learning rate (5e-6 to 5e-5).
    /// </summary>
    public static TrainerOptions DefaultTrainerOptions => new()
    {
        LearningRate = 1e-6,
        Schedule = LearningRateScheduleKind.Linear,
        MicroBatchSize = 8,
        MaxSequenceLength = 1024,
    };

    /// <summary>The training stream of preference pairs (one source, <c>preference</c>), shuffled every epoch.</summary>
    /// <param name="records">Preference lines.</param>
    /// <param name="encoder">Encoder for text lines; null when they are pre-tokenized.</param>
    /// <param name="seed">Shuffle seed (the loop's seed).</param>
    public static TrainingData CreateData(IReadOnlyList<DatasetRecord> records, IConversationEncoder? encoder, int seed) =>
        new(new[] { new DataSource("preference", records, new PreferenceExampleBuilder(encoder)) }, seed);

    /// <summary>
    /// The whole run. The reference is <see cref="DpoPaths.Reference"/> when given (its tokenizer must map tokens to the
    /// same ids), else the starting model: a second frozen copy, or under LoRA (with
    /// <see cref="DpoTrainerOptions.ReferenceFromDisabledAdapters"/>) the student with its adapters disabled.
    /// </summary>
    /// <param name="paths">Model folder(s), data file and output folder.</param>
    /// <param name="options">Options; a null <see cref="TrainerOptions.CheckpointDirectory"/> becomes OutputDirectory/checkpoints.</param>
    /// <param name="device">Device (null: automatic).</param>
    /// <param name="dtype">Weight dtype (null: float32 on CPU, else the config's).</param>
    /// <param name="logger">Logger, or null.</param>
    /// <param name="progress">Per-step progress (its terms carry the DPO metrics), or null.</param>
    /// <param name="cancellationToken">Cancellation (a checkpoint is written first).</param>
    /// <returns>Where the model went, and the loop's result.</returns>
    public static TrainingRun TrainFromFolders(DpoPaths paths, DpoTrainerOptions options, Device? device = null, ScalarType? dtype = null,
        ILogger? logger = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        TrainingExport.CheckOutputDirectory(paths.OutputDirectory);
        var dev = device ?? TorchRuntime.ResolveDevice(null);
        ConversationEncoder? encoder = OptionalConversationEncoder.FromFolder(paths.Model); // pre-tokenized data needs no chat template
        if (paths.Reference is not null) VocabularyCheck.EnsureSameTokenMap(paths.Model, paths.Reference);
        var records = DatasetReader.ReadFile(paths.Data);
        var trainerOptions = TrainingExport.WithCheckpointDefault(options.EffectiveTrainer, paths.OutputDirectory);
        var dpo = options.Dpo.VocabularySize is null && encoder is not null ? options.Dpo with { VocabularySize = encoder.VocabSize } : options.Dpo;
        var data = CreateData(records, encoder, trainerOptions.Seed);
        if (options.Epochs is double epochs)
            trainerOptions = trainerOptions with { MaxSteps = data.StepsFor(epochs, trainerOptions.MicroBatchSize * trainerOptions.GradientAccumulationSteps) };

        using var student = CausalLanguageModel.FromPretrained(paths.Model, dev, dtype);
        if (options.Lora is { } lora) LoraApplier.Apply(student, lora);
        bool view = options.Lora is not null && paths.Reference is null && options.ReferenceFromDisabledAdapters;
        using var loaded = view ? null : CausalLanguageModel.FromPretrained(paths.Reference ?? paths.Model, dev, dtype);
        ICausalLanguageModel reference = view ? new AdaptersDisabledModel(student) : loaded!;
        if (loaded is not null)
        {
            foreach (var (_, p) in loaded.NamedParameters()) p.requires_grad = false;
            loaded.SetTrainingMode(false);
            long needed = dpo.VocabularySize ?? student.VocabSize;
            if (loaded.VocabSize < needed)
                throw new InvalidDataException($"The reference model ({paths.Reference ?? paths.Model}) has {loaded.VocabSize} logits, fewer than the {needed} the policy's log-softmax uses.");
        }
        var teachers = new Dictionary<string, ICausalLanguageModel>(StringComparer.Ordinal) { [DpoObjective.ReferenceTeacher] = reference };
        TrainingResult result;
        using (var trainer = new Trainer(student, new DpoObjective(dpo), trainerOptions, teachers, logger))
            result = trainer.Train(data, progress, cancellationToken);
        string? adapterDir = TrainingExport.SaveAll(student, options.Lora, paths.OutputDirectory, paths.Model);
        return new TrainingRun(Path.GetFullPath(paths.OutputDirectory), adapterDir, result);
    }
}
