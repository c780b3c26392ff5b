namespace DeepAlign.Training;

/// <summary>Files of a folder-based DPO run (<see cref="DpoTrainer.TrainFromFolders"/>).</summary>
/// <param name="Model">The starting model's Hugging Face folder (pi_theta starts from it).</param>
/// <param name="Data">Dataset file of preference lines (docs/training.md, "DPO"; JSONL, or CSV through <see cref="DeepAlign.Data.DatasetReader"/>).</param>
/// <param name="OutputDirectory">Where the trained model (merged weights + tokenizer files), adapter/ (LoRA) and checkpoints/ go.</param>
/// <param name="Reference">The frozen reference's folder; null: the starting model (a second copy, or under LoRA the student with its adapters disabled).</param>
public sealed record DpoPaths(string Model, string Data, string OutputDirectory, string? Reference = null);
