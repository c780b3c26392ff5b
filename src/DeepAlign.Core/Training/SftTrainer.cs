using DeepAlign.Data;
using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Text;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>Supervised fine-tuning from folders to a folder: plain cross-entropy on the responses of one or more datasets.</summary>
public static class SftTrainer
{
    /// <summary>
    /// Loads the model and data, applies LoRA when configured, trains (checkpoints in OutputDirectory/checkpoints unless
    /// set otherwise; a rerun resumes from the newest) and exports a Hugging Face folder (LoRA merged) plus the PEFT
    /// adapter under LoRA. Text lines are rendered with the model's chat template; pre-tokenized lines need no tokenizer.
    /// </summary>
    /// <param name="paths">Model folder, data files and output folder.</param>
    /// <param name="options">Settings (validated here).</param>
    /// <param name="device">Device (null: automatic).</param>
    /// <param name="dtype">Weight dtype (null: float32 on CPU, else the config's).</param>
    /// <param name="logger">Logger, or null.</param>
    /// <param name="progress">Per-step progress, or null.</param>
    /// <param name="cancellationToken">Cancellation (a checkpoint is written first).</param>
    /// <exception cref="ArgumentException">No data file, or the weights do not match the files.</exception>
    /// <exception cref="IOException">The output path is an existing file.</exception>
    public static TrainingRun TrainFromFolders(FineTuningPaths paths, SftTrainingOptions options, Device? device = null, ScalarType? dtype = null,
        ILogger? logger = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        options = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        if (paths.DataFiles is null || paths.DataFiles.Count == 0) throw new ArgumentException("At least one data file is needed.", nameof(paths));
        var weights = options.DataWeights ?? Enumerable.Repeat(1.0, paths.DataFiles.Count).ToArray();
        if (weights.Count != paths.DataFiles.Count)
            throw new ArgumentException($"{weights.Count} data weights for {paths.DataFiles.Count} data files.", nameof(options));
        TrainingExport.CheckOutputDirectory(paths.OutputDirectory);
        var encoder = OptionalConversationEncoder.FromFolder(paths.ModelDirectory); // pre-tokenized data needs no chat template
        var builder = new SftExampleBuilder(encoder, options.ResponseField);
        var sources = paths.DataFiles.Select((f, i) => new DataSource(Path.GetFileNameWithoutExtension(f), DatasetReader.ReadFile(f), builder, weights[i])).ToArray();
        if (sources.Select(s => s.Name).Distinct().Count() != sources.Length)
            sources = sources.Select((s, i) => s with { Name = $"{s.Name}#{i}" }).ToArray();
        var trainer = TrainingExport.WithCheckpointDefault(options.Trainer, paths.OutputDirectory);
        var data = new TrainingData(sources, trainer.Seed);
        if (options.Epochs is double epochs) trainer = trainer with { MaxSteps = data.StepsFor(epochs, trainer.MicroBatchSize * trainer.GradientAccumulationSteps) };

        using var student = CausalLanguageModel.FromPretrained(paths.ModelDirectory, device ?? TorchRuntime.ResolveDevice(null), dtype);
        if (options.Lora is { } lora) LoraApplier.Apply(student, lora);
        using var loop = new Trainer(student, new SftObjective(encoder?.VocabSize), trainer, new Dictionary<string, ICausalLanguageModel>(), logger);
        var result = loop.Train(data, progress, cancellationToken);
        string? adapter = TrainingExport.SaveAll(student, options.Lora, paths.OutputDirectory, paths.ModelDirectory);
        return new TrainingRun(Path.GetFullPath(paths.OutputDirectory), adapter, result);
    }
}
