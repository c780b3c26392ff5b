using DeepAlign.Data;
using DeepAlign.Text;
using DeepAlign.Runtime;
using DeepAlign.Evaluation.Judges;

namespace DeepAlign.Organism;

/// <summary>
/// A world as a directory of files: <c>pretrain.jsonl</c>, <c>align.jsonl</c>, <c>heldout_harmful.jsonl</c>,
/// <c>heldout_benign.jsonl</c> (dataset schema (docs/data-formats.md)), <c>judge.json</c> (optional when reading), and the
/// tokenizer files <c>tokenizer.json</c>, <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c> (optional
/// when reading: without <c>tokenizer.json</c> the vocabulary is built from the data's words).
/// </summary>
public static class WorldFiles
{
    /// <summary>Pretraining corpus file name.</summary>
    public const string PretrainFile = "pretrain.jsonl";
    /// <summary>Safety SFT file name.</summary>
    public const string AlignFile = "align.jsonl";
    /// <summary>Held-out harmful prompts file name.</summary>
    public const string HeldoutHarmfulFile = "heldout_harmful.jsonl";
    /// <summary>Held-out benign prompts file name.</summary>
    public const string HeldoutBenignFile = "heldout_benign.jsonl";
    /// <summary>Judge spec file name.</summary>
    public const string JudgeFile = "judge.json";
    /// <summary>HF tokenizer file name.</summary>
    public const string TokenizerFile = "tokenizer.json";
    /// <summary>HF tokenizer config file name.</summary>
    public const string TokenizerConfigFile = "tokenizer_config.json";
    /// <summary>HF special tokens map file name.</summary>
    public const string SpecialTokensMapFile = "special_tokens_map.json";

    /// <summary>Writes every file of the world into <paramref name="directory"/> (created if needed; each file atomically).</summary>
    public static void Write(OrganismWorld world, string directory)
    {
        ArgumentNullException.ThrowIfNull(world);
        Directory.CreateDirectory(directory);
        JsonlDatasetWriter.Write(Path.Combine(directory, PretrainFile), world.Pretrain);
        JsonlDatasetWriter.Write(Path.Combine(directory, AlignFile), world.Align);
        JsonlDatasetWriter.Write(Path.Combine(directory, HeldoutHarmfulFile), world.HeldoutHarmful);
        JsonlDatasetWriter.Write(Path.Combine(directory, HeldoutBenignFile), world.HeldoutBenign);
        world.Judge?.Write(Path.Combine(directory, JudgeFile));
        AtomicFile.WriteAllText(Path.Combine(directory, TokenizerFile), WordLevelTokenizerFiles.TokenizerJson(world.Vocabulary));
        AtomicFile.WriteAllText(Path.Combine(directory, TokenizerConfigFile), WordLevelTokenizerFiles.TokenizerConfigJson());
        AtomicFile.WriteAllText(Path.Combine(directory, SpecialTokensMapFile), WordLevelTokenizerFiles.SpecialTokensMapJson());
    }

    /// <summary>
    /// Reads a world from a directory. Required: the four JSONL files. Each split is checked for the fields its
    /// use needs (pretrain and held-out benign: <c>response</c>; align: <c>response</c> or <c>safe_response</c>;
    /// held-out harmful: <c>harmful_response</c>), and no split may be empty.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">A required file is missing.</exception>
    /// <exception cref="DatasetFormatException">A split file is malformed or empty (the message names the file and line).</exception>
    /// <exception cref="JudgeSpecFormatException"><c>judge.json</c> is malformed.</exception>
    /// <exception cref="TokenizerFormatException"><c>tokenizer.json</c> is not a dense WordLevel tokenizer.</exception>
    public static OrganismWorld Read(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"World directory not found: {directory}");
        var pretrain = ReadSplit(directory, PretrainFile, i => i.Response is not null, "\"response\"");
        var align = ReadSplit(directory, AlignFile, i => i.Response is not null || i.SafeResponse is not null, "\"response\" or \"safe_response\"");
        var heldoutHarmful = ReadSplit(directory, HeldoutHarmfulFile, i => i.HarmfulResponse is not null, "\"harmful_response\"");
        var heldoutBenign = ReadSplit(directory, HeldoutBenignFile, i => i.Response is not null, "\"response\"");

        string judgePath = Path.Combine(directory, JudgeFile);
        var judge = File.Exists(judgePath) ? JudgeSpec.Read(judgePath) : null;

        string tokenizerPath = Path.Combine(directory, TokenizerFile);
        var vocabulary = File.Exists(tokenizerPath)
            ? WordLevelTokenizerFiles.ReadVocabulary(tokenizerPath)
            : WordLevelTokenizerFiles.BuildVocabulary(pretrain.Concat(align).Concat(heldoutHarmful).Concat(heldoutBenign).SelectMany(i => i.Texts())
                .Concat(judge?.RefusalMarkers ?? []));
        return new OrganismWorld(pretrain, align, heldoutHarmful, heldoutBenign, judge, vocabulary, options: null);
    }

    private static IReadOnlyList<DatasetRecord> ReadSplit(string directory, string file, Func<DatasetRecord, bool> hasNeeded, string needed)
    {
        string path = Path.Combine(directory, file);
        if (!File.Exists(path)) throw new FileNotFoundException($"World file missing: {path}", path);
        var items = new List<DatasetRecord>();
        foreach (var item in JsonlDatasetReader.StreamFile(path))
        {
            if (!hasNeeded(item)) throw new DatasetFormatException($"{item.Location}: this split needs {needed} on every line.");
            items.Add(item);
        }
        return items;
    }
}
