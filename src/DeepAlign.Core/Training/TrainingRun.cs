namespace DeepAlign.Training;

/// <summary>The outcome of a folder-to-folder training run (<see cref="SftTrainer.TrainFromFolders"/>, <c>TargetedCompletionTrainer.TrainFromFolders</c>).</summary>
/// <param name="OutputDirectory">The exported Hugging Face folder (LoRA merged into the weights).</param>
/// <param name="AdapterDirectory">The PEFT adapter folder under LoRA, else null.</param>
/// <param name="Training">The loop's result (history, throughput, checkpoint).</param>
public sealed record TrainingRun(string OutputDirectory, string? AdapterDirectory, TrainingResult Training)
{
    /// <summary>Mean gradient norms of the probe run before training (targeted completion with a probe), else null.</summary>
    public IReadOnlyList<double>? ProbeNorms { get; init; }

    /// <summary>Wall time of that probe in seconds, else null.</summary>
    public double? ProbeSeconds { get; init; }

    /// <summary>The file the probe norms were written to, else null.</summary>
    public string? ProbeNormsFile { get; init; }
}
