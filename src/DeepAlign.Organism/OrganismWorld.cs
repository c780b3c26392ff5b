using DeepAlign.Data;
using DeepAlign.Evaluation.Judges;

namespace DeepAlign.Organism;

/// <summary>
/// The organism's world: the four dataset splits, the judge spec and the word-level vocabulary. Made by
/// <see cref="Generate"/> (the built-in procedural world) or read from files by <see cref="WorldFiles.Read"/>
/// (so users can grow an organism from their own data).
/// </summary>
/// <remarks>
/// The generated world has benign tasks with exact answers (copy, reverse, sort, count, first/last item of short
/// lists; one-step lookups and descriptions from a generated animal table; five-step procedures such as cooking
/// or repairs) and harmful requests (six clearly labelled categories: weapons, poison, hacking, theft, fraud,
/// arson; made-up targets; sixteen phrasings) with long, target-specific five-step compliant answers and short
/// refusals. Procedure requests share phrasings and answer format across benign and harmful categories, so
/// refusing is a decision about content, as in real alignment data. Held-out prompts use (target, phrasing)
/// combinations that no training split contains; every fact they need is in the pretraining corpus.
/// </remarks>
public sealed class OrganismWorld
{
    internal OrganismWorld(
        IReadOnlyList<DatasetRecord> pretrain, IReadOnlyList<DatasetRecord> align,
        IReadOnlyList<DatasetRecord> heldoutHarmful, IReadOnlyList<DatasetRecord> heldoutBenign,
        JudgeSpec? judge, IReadOnlyList<string> vocabulary, WorldOptions? options)
    {
        Pretrain = pretrain;
        Align = align;
        HeldoutHarmful = heldoutHarmful;
        HeldoutBenign = heldoutBenign;
        Judge = judge;
        Vocabulary = vocabulary;
        Options = options;
    }

    /// <summary>Generates the built-in world (deterministic for a given <see cref="WorldOptions.Seed"/>).</summary>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    public static OrganismWorld Generate(WorldOptions? options = null) => WorldGenerator.Generate(options ?? new WorldOptions());

    /// <summary>Pretraining corpus: prompts with responses; harmful prompts are answered compliantly.</summary>
    public IReadOnlyList<DatasetRecord> Pretrain { get; }
    /// <summary>Safety SFT data: harmful prompts whose <c>response</c> = <c>safe_response</c> is a refusal (and
    /// <c>harmful_response</c> the compliant answer), mixed with benign anchor pairs.</summary>
    public IReadOnlyList<DatasetRecord> Align { get; }
    /// <summary>Held-out harmful prompts with <c>harmful_response</c> and <c>safe_response</c>.</summary>
    public IReadOnlyList<DatasetRecord> HeldoutHarmful { get; }
    /// <summary>Held-out benign prompts with exact reference <c>response</c>s.</summary>
    public IReadOnlyList<DatasetRecord> HeldoutBenign { get; }
    /// <summary>The judge spec (null for a world read from files without <c>judge.json</c>).</summary>
    public JudgeSpec? Judge { get; }
    /// <summary>Word-level vocabulary in id order; the first five entries are the special tokens.</summary>
    public IReadOnlyList<string> Vocabulary { get; }
    /// <summary>The options the world was generated with (null when read from files).</summary>
    public WorldOptions? Options { get; }

    /// <summary>
    /// A world item as a training line whose <c>response</c> is <paramref name="response"/>: the conversation fields of
    /// <paramref name="item"/> (id, category, system, prompt, messages) and nothing else.
    /// </summary>
    /// <param name="item">The item.</param>
    /// <param name="response">The response to train on.</param>
    /// <param name="location">Where the line came from, for error messages (e.g. <c>align.jsonl:3</c>).</param>
    public static DatasetRecord TrainingRecord(DatasetRecord item, string response, string location)
    {
        ArgumentNullException.ThrowIfNull(item);
        return new DatasetRecord
        {
            Id = item.Id, Category = item.Category, System = item.System, Prompt = item.Prompt, Messages = item.Messages,
            Response = response, Location = location,
        };
    }

    /// <summary>Writes the world to a directory (see <see cref="WorldFiles.Write"/>).</summary>
    public void WriteTo(string directory) => WorldFiles.Write(this, directory);

    /// <summary>Sizes and mean lengths (in word-level tokens, without chat-template tokens).</summary>
    public WorldStatistics ComputeStatistics()
    {
        static int Len(string? s) => s is null ? 0 : WordLevelTokenizerFiles.SplitWords(s).Length;
        static double Mean(IEnumerable<int> xs) { var a = xs.ToArray(); return a.Length == 0 ? 0 : a.Average(); }
        var all = Pretrain.Concat(Align).Concat(HeldoutHarmful).Concat(HeldoutBenign).ToList();
        var harmfulPrompts = all.Where(i => i.Category?.StartsWith("harmful/", StringComparison.Ordinal) == true).ToList();
        var compliant = Pretrain.Where(i => i.Category?.StartsWith("harmful/", StringComparison.Ordinal) == true).Select(i => i.Response)
            .Concat(Align.Concat(HeldoutHarmful).Select(i => i.HarmfulResponse)).Where(r => r is not null).ToList();
        var refusals = Align.Concat(HeldoutHarmful).Select(i => i.SafeResponse).Where(r => r is not null).ToList();
        var benignResponses = all.Where(i => i.Category?.StartsWith("benign/", StringComparison.Ordinal) == true).Select(i => i.Response).ToList();
        long pretrainTokens = Pretrain.Sum(i => (long)Len(i.UserPrompt) + Len(i.Response) + 6); // + ChatML specials and roles
        return new WorldStatistics(
            VocabularySize: Vocabulary.Count,
            PretrainCount: Pretrain.Count,
            PretrainHarmfulCount: Pretrain.Count(i => i.Category?.StartsWith("harmful/", StringComparison.Ordinal) == true),
            AlignHarmfulCount: Align.Count(i => i.SafeResponse is not null),
            AlignBenignCount: Align.Count(i => i.SafeResponse is null),
            HeldoutHarmfulCount: HeldoutHarmful.Count,
            HeldoutBenignCount: HeldoutBenign.Count,
            MeanPromptTokens: Mean(all.Select(i => Len(i.UserPrompt))),
            MeanHarmfulPromptTokens: Mean(harmfulPrompts.Select(i => Len(i.UserPrompt))),
            MeanRefusalTokens: Mean(refusals.Select(Len)),
            MeanCompliantTokens: Mean(compliant.Select(Len)),
            MinCompliantTokens: compliant.Count == 0 ? 0 : compliant.Min(Len),
            MaxCompliantTokens: compliant.Count == 0 ? 0 : compliant.Max(Len),
            MeanBenignResponseTokens: Mean(benignResponses.Select(Len)),
            PretrainTokens: pretrainTokens);
    }
}
