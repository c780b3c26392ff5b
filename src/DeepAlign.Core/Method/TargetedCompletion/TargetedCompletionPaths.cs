namespace DeepAlign.Method.TargetedCompletion;

/// <summary>Files of a folder-based run (<see cref="TargetedCompletionTrainer.TrainFromFolders"/>).</summary>
/// <param name="AlignedModel">The aligned model's Hugging Face folder (pi_a; the student starts from it).</param>
/// <param name="BaseModel">The base model's folder (pi_b); needed by targeted completion only.</param>
/// <param name="HarmfulData">Dataset file (JSONL or CSV, <see cref="DeepAlign.Data.DatasetReader"/>) of harmful triples (prompt, harmful_response, safe_response).</param>
/// <param name="BenignData">Dataset file (JSONL or CSV) of benign pairs (prompt, response).</param>
/// <param name="OutputDirectory">Where the trained model (merged weights + tokenizer files), adapter/ (LoRA) and checkpoints/ go.</param>
public sealed record TargetedCompletionPaths(string AlignedModel, string? BaseModel, string HarmfulData, string BenignData, string OutputDirectory);
