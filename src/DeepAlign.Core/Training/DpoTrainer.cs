using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using DeepAlign.Data;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>Files of a folder-based DPO run (<see cref="DpoTrainer.TrainFromFolders"/>).</summary>
/// <param name="Model">The starting model's Hugging Face folder (pi_theta starts from it).</param>
/// <param name="Data">JSONL of preference lines (docs/training.md, "DPO").</param>
/// <param name="OutputDirectory">Where the trained model (merged weights + tokenizer files), adapter/ (LoRA) and checkpoints/ go.</param>
/// <param name="Reference">The frozen reference's folder; null: the starting model (a second copy, or under LoRA the student with its adapters disabled).</param>
public sealed record DpoPaths(string Model, string Data, string OutputDirectory, string? Reference = null);

/// <summary>Settings of <see cref="DpoTrainer.TrainFromFolders"/>.</summary>
public sealed record DpoTrainerOptions
{
    /// <summary>The loss (beta, loss type, label smoothing). Default TRL's.</summary>
    public DpoOptions Dpo { get; init; } = new();

    /// <summary>The training loop; null uses <see cref="DpoTrainer.DefaultTrainerOptions"/>.</summary>
    public TrainerOptions? Trainer { get; init; }

    /// <summary>LoRA adapters on the student; null (default): full fine-tuning.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>
    /// Under LoRA without a reference folder: use the student with its adapters disabled as the reference
    /// (<see cref="AdaptersDisabledModel"/>, no second copy of the weights), as TRL does with PEFT. False loads a second
    /// copy of the starting model. Default true.
    /// </summary>
    public bool ReferenceFromDisabledAdapters { get; init; } = true;

    /// <summary>The effective loop settings.</summary>
    public TrainerOptions EffectiveTrainer => Trainer ?? DpoTrainer.DefaultTrainerOptions;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public DpoTrainerOptions Validate()
    {
        if (Dpo is null) throw new ArgumentException("DpoTrainerOptions.Dpo must be set.", nameof(Dpo));
        Dpo.Validate();
        EffectiveTrainer.Validate();
        Lora?.Validate();
        return this;
    }
}

/// <summary>The outcome of a folder-based DPO run.</summary>
/// <param name="OutputDirectory">The exported Hugging Face folder.</param>
/// <param name="AdapterDirectory">The PEFT adapter folder under LoRA, else null.</param>
/// <param name="Training">The loop's result (history with the DPO metrics, throughput, checkpoint).</param>
public sealed record DpoRun(string OutputDirectory, string? AdapterDirectory, TrainingResult Training);

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
    public static DpoRun TrainFromFolders(DpoPaths paths, DpoTrainerOptions options, Device? device = null, ScalarType? dtype = null,
        ILogger? logger = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var dev = device ?? TorchRuntime.ResolveDevice(null);
        ConversationEncoder? encoder = OptionalConversationEncoder.FromFolder(paths.Model); // pre-tokenized data needs no chat template
        if (paths.Reference is not null) VocabularyCheck.EnsureSameTokenMap(paths.Model, paths.Reference);
        var records = JsonlDatasetReader.ReadFile(paths.Data);
        var trainerOptions = options.EffectiveTrainer;
        if (trainerOptions.CheckpointDirectory is null) trainerOptions = trainerOptions with { CheckpointDirectory = Path.Combine(paths.OutputDirectory, "checkpoints") };
        var dpo = options.Dpo.VocabularySize is null && encoder is not null ? options.Dpo with { VocabularySize = encoder.VocabSize } : options.Dpo;
        var data = CreateData(records, encoder, trainerOptions.Seed);

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
        string? adapterDir = null;
        if (options.Lora is { } l)
        {
            adapterDir = Path.Combine(paths.OutputDirectory, "adapter");
            TrainingExport.SaveAdapter(student, l, adapterDir, paths.Model);
        }
        TrainingExport.SaveModel(student, paths.OutputDirectory, paths.Model);
        return new DpoRun(Path.GetFullPath(paths.OutputDirectory), adapterDir, result);
    }
}
