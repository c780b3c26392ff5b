namespace DeepAlign.Training;

/// <summary>Files of a folder-based supervised fine-tuning run (<see cref="SftTrainer.TrainFromFolders"/>).</summary>
/// <param name="ModelDirectory">The Hugging Face folder the student starts from.</param>
/// <param name="DataFiles">Dataset files (JSONL dataset lines or pre-tokenized ids, or CSV: <see cref="DeepAlign.Data.DatasetReader"/>); several files are mixed.</param>
/// <param name="OutputDirectory">Where the trained model, <c>adapter/</c> (LoRA) and <c>checkpoints/</c> go.</param>
public sealed record FineTuningPaths(string ModelDirectory, IReadOnlyList<string> DataFiles, string OutputDirectory);
