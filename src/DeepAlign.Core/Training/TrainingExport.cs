using DeepAlign.Runtime;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;

namespace DeepAlign.Training;

/// <summary>Writes the result of training as a Hugging Face model folder (or a PEFT adapter folder).</summary>
public static class TrainingExport
{
    /// <summary>Tokenizer and template files copied from the source model folder when present.</summary>
    public static readonly IReadOnlyList<string> TokenizerFiles = new[]
    {
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt",
        "added_tokens.json", "chat_template.jinja", "chat_template.json", "generation_config.json",
    };

    /// <summary>
    /// Saves <paramref name="model"/> as a Hugging Face folder (config, safetensors, and the tokenizer files of
    /// <paramref name="sourceModelDirectory"/>); each file is written atomically (temporary name, then rename) and other
    /// contents of the folder (e.g. <c>checkpoints/</c>) are left alone. LoRA adapters are merged into the weights
    /// first (the model is modified).
    /// </summary>
    /// <param name="model">The trained model.</param>
    /// <param name="outputDirectory">Destination folder (created if needed).</param>
    /// <param name="sourceModelDirectory">The folder the model was loaded from, for tokenizer files; null copies none.</param>
    /// <returns>The number of LoRA adapters merged.</returns>
    public static int SaveModel(DecoderOnlyCausalLM model, string outputDirectory, string? sourceModelDirectory)
    {
        ArgumentNullException.ThrowIfNull(model);
        int merged = LoraApplier.Merge(model);
        Directory.CreateDirectory(outputDirectory);
        model.SavePretrained(outputDirectory);
        CopyTokenizerFiles(sourceModelDirectory, outputDirectory, overwrite: true);
        return merged;
    }

    /// <summary>
    /// The end of a folder-to-folder run: under LoRA the PEFT adapter goes to <c>OUTPUT/adapter</c> first, then the model
    /// (adapters merged) to <paramref name="outputDirectory"/>.
    /// </summary>
    /// <param name="model">The trained model.</param>
    /// <param name="lora">The adapters' options, or null for full fine-tuning.</param>
    /// <param name="outputDirectory">Destination folder.</param>
    /// <param name="sourceModelDirectory">The folder the model was loaded from (tokenizer files, adapter base).</param>
    /// <returns>The adapter folder, or null.</returns>
    public static string? SaveAll(DecoderOnlyCausalLM model, LoraOptions? lora, string outputDirectory, string sourceModelDirectory)
    {
        string? adapter = null;
        if (lora is not null)
        {
            adapter = Path.Combine(outputDirectory, "adapter");
            SaveAdapter(model, lora, adapter, sourceModelDirectory);
        }
        SaveModel(model, outputDirectory, sourceModelDirectory);
        return adapter;
    }

    /// <summary>Checks before any training that the output folder can be written (it must not be an existing file).</summary>
    /// <param name="outputDirectory">The output folder.</param>
    /// <exception cref="IOException">The path is an existing file.</exception>
    public static void CheckOutputDirectory(string outputDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        if (File.Exists(outputDirectory))
            throw new IOException($"The output path '{outputDirectory}' is an existing file; training writes a model folder there.");
    }

    /// <summary>The loop settings with <see cref="TrainerOptions.CheckpointDirectory"/> defaulting to <c>OUTPUT/checkpoints</c>.</summary>
    /// <param name="options">Loop settings.</param>
    /// <param name="outputDirectory">The run's output folder.</param>
    public static TrainerOptions WithCheckpointDefault(TrainerOptions options, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.CheckpointDirectory is null ? options with { CheckpointDirectory = Path.Combine(outputDirectory, "checkpoints") } : options;
    }

    /// <summary>Saves the LoRA adapters in PEFT's format plus the source folder's tokenizer files.</summary>
    /// <param name="model">A model with adapters.</param>
    /// <param name="options">The adapters' options.</param>
    /// <param name="outputDirectory">Destination folder.</param>
    /// <param name="sourceModelDirectory">The base model folder (recorded as base_model_name_or_path; tokenizer files copied).</param>
    public static void SaveAdapter(DecoderOnlyCausalLM model, LoraOptions options, string outputDirectory, string? sourceModelDirectory)
    {
        LoraApplier.SaveAdapter(model, options, outputDirectory, sourceModelDirectory is null ? null : Path.GetFullPath(sourceModelDirectory));
        if (sourceModelDirectory is not null) CopyTokenizerFiles(sourceModelDirectory, outputDirectory, overwrite: false);
    }

    private static void CopyTokenizerFiles(string? source, string destination, bool overwrite)
    {
        if (source is null) return;
        foreach (var f in TokenizerFiles)
        {
            var from = Path.Combine(source, f);
            var to = Path.Combine(destination, f);
            if (!File.Exists(from) || (File.Exists(to) && (!overwrite || f == "generation_config.json"))) continue;
            AtomicFile.Copy(from, to);
        }
    }
}
