using DeepAlign.Runtime;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using DeepAlign.Configuration;
using DeepAlign.Data;
using DeepAlign.Text;

namespace DeepAlign.Organism;

/// <summary>
/// Builds the model organism's pinned pair from a world: a WordLevel tokenizer folder, a tiny Llama "base" pretrained
/// by plain SFT on <c>pretrain.jsonl</c> (so it answers everything, harmful requests included), and an "aligned" model
/// made from the base by ordinary safety SFT on <c>align.jsonl</c> (refusals for harmful prompts plus benign anchors,
/// plain cross-entropy on the responses). Both are saved as Hugging Face folders. The build is deterministic (fixed
/// seed, CPU, fixed thread count), and <see cref="LoadOrBuild"/> caches the pair under a key that hashes the world's
/// content, the recipe and <see cref="OrganismRecipe.CodeVersion"/>.
/// </summary>
public static class OrganismBuilder
{
    /// <summary>Name of the build report file in a pair folder.</summary>
    public const string ReportFile = "build.json";

    /// <summary>The cache key of (world, recipe, code version): the first 16 hex digits of a SHA-256.</summary>
    public static string CacheKey(OrganismWorld world, OrganismRecipe recipe)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(recipe);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) { sha.AppendData(Encoding.UTF8.GetBytes(s)); sha.AppendData([0]); }
        Add(recipe.Canonical());
        foreach (var (name, items) in new[] { ("pretrain", world.Pretrain), ("align", world.Align), ("heldout_harmful", world.HeldoutHarmful), ("heldout_benign", world.HeldoutBenign) })
        {
            Add(name);
            foreach (var item in items) Add(JsonlDatasetWriter.FormatLine(item));
        }
        Add(world.Judge?.ToJson() ?? "no judge");
        Add(WordLevelTokenizerFiles.TokenizerJson(world.Vocabulary));
        return Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant()[..16];
    }

    /// <summary>
    /// Returns the pair from <paramref name="cacheDirectory"/> (<c>organism-KEY/</c>) when a complete one is there,
    /// else builds it there (atomically: a cancelled or failed build leaves no folder behind). A cached pair whose
    /// weight files do not match the SHA-256 hashes of its <c>build.json</c> is a corrupt entry: a warning naming the
    /// file is logged and the entry is rebuilt in place (the result then has <see cref="OrganismPair.FromCache"/> false).
    /// </summary>
    /// <param name="world">The world.</param>
    /// <param name="cacheDirectory">The cache root (created if needed).</param>
    /// <param name="recipe">The recipe (default: <see cref="OrganismRecipe"/>'s defaults).</param>
    /// <param name="progress">Build progress.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="cancellationToken">Cancellation (checked between training steps).</param>
    public static OrganismPair LoadOrBuild(OrganismWorld world, string cacheDirectory, OrganismRecipe? recipe = null,
        IProgress<OrganismBuildProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentException.ThrowIfNullOrEmpty(cacheDirectory);
        recipe = (recipe ?? new OrganismRecipe()).Validate();
        string key = CacheKey(world, recipe);
        string dir = Path.Combine(cacheDirectory, "organism-" + key);
        try
        {
            if (TryLoad(dir) is { } cached) return cached with { FromCache = true };
        }
        catch (OrganismIntegrityException e)
        {
            (logger ?? NullLogger.Instance).LogWarning("{Problem} Rebuilding the cache entry {Directory}.", e.Message, dir);
        }
        // The base depends only on the world and the pretraining fields, which the recipe kinds share: reuse the base of
        // a cached pair of the other kind (same weights bit for bit, so the result equals a cold build) instead of pretraining again.
        string? baseFrom = null;
        foreach (var kind in Enum.GetValues<OrganismRecipeKind>().Where(k => k != recipe.Kind))
        {
            string sibling = Path.Combine(cacheDirectory, "organism-" + CacheKey(world, recipe with { Kind = kind }));
            try
            {
                if (TryLoad(sibling) is not null) { baseFrom = sibling; break; }
            }
            catch (OrganismIntegrityException) { }
        }
        var report = default(OrganismBuildReport);
        AtomicDirectory.Write(dir, temp => report = Build(world, temp, recipe, progress, logger, cancellationToken, baseFrom));
        return new OrganismPair(dir, key, false, report!);
    }

    /// <summary>
    /// Reads a complete pair folder (both models and <c>build.json</c>), or null when it is missing or incomplete.
    /// When <c>build.json</c> records weight hashes (<see cref="OrganismBuildReport.WeightSha256"/>), every
    /// <c>*.safetensors</c> file of <c>base/</c> and <c>aligned/</c> is hashed and compared; older reports without
    /// hashes are read without this check.
    /// </summary>
    /// <exception cref="OrganismIntegrityException">A weight file differs from its recorded hash, a recorded one is
    /// missing, or an unrecorded one is present; the exception names the file.</exception>
    public static OrganismPair? TryLoad(string directory)
    {
        string reportPath = Path.Combine(directory, ReportFile);
        if (!File.Exists(reportPath)) return null;
        foreach (var sub in new[] { "base", "aligned" })
            foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
                if (!File.Exists(Path.Combine(directory, sub, f))) return null;
        var report = JsonSerializer.Deserialize<OrganismBuildReport>(File.ReadAllText(reportPath))
            ?? throw new FormatException($"{reportPath}: empty build report.");
        if (report.WeightSha256 is { } recorded) VerifyWeights(directory, recorded);
        return new OrganismPair(directory, report.CacheKey, true, report);
    }

    /// <summary>The two model folders of a pair, whose weight files are hashed.</summary>
    private static readonly string[] ModelFolders = ["base", "aligned"];

    /// <summary>SHA-256 of every <c>*.safetensors</c> file in <c>base/</c> and <c>aligned/</c> of a pair folder, keyed
    /// by relative path with <c>/</c> separators, in ordinal order.</summary>
    internal static IReadOnlyDictionary<string, string> HashWeights(string directory)
    {
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var rel in WeightFiles(directory)) hashes[rel] = Sha256(Path.Combine(directory, rel));
        return hashes;
    }

    private static IEnumerable<string> WeightFiles(string directory) =>
        ModelFolders.SelectMany(sub => Directory.Exists(Path.Combine(directory, sub))
                ? Directory.GetFiles(Path.Combine(directory, sub), "*.safetensors").Select(f => sub + "/" + Path.GetFileName(f))
                : [])
            .OrderBy(f => f, StringComparer.Ordinal);

    internal static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    /// <summary>Checks the weight files of a pair folder against recorded hashes.</summary>
    /// <exception cref="OrganismIntegrityException">The first file (ordinal order) that differs, is missing or is not recorded.</exception>
    internal static void VerifyWeights(string directory, IReadOnlyDictionary<string, string> recorded)
    {
        foreach (var (rel, expected) in recorded.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string path = Path.Combine(directory, rel.Replace('/', Path.DirectorySeparatorChar));
            if (!File.Exists(path)) throw new OrganismIntegrityException(path, expected, null);
            string actual = Sha256(path);
            if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase)) throw new OrganismIntegrityException(path, expected, actual);
        }
        foreach (var rel in WeightFiles(directory))
            if (!recorded.ContainsKey(rel))
                throw new OrganismIntegrityException(Path.Combine(directory, rel.Replace('/', Path.DirectorySeparatorChar)), null, Sha256(Path.Combine(directory, rel)));
    }

    /// <summary>
    /// Builds the pair into <paramref name="directory"/> (<c>base/</c>, <c>aligned/</c>, <c>build.json</c>), without
    /// caching. Sets libtorch to <see cref="OrganismRecipe.Threads"/> threads for the build and restores it afterwards.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled (between steps).</exception>
    public static OrganismBuildReport Build(OrganismWorld world, string directory, OrganismRecipe? recipe = null,
        IProgress<OrganismBuildProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default) =>
        Build(world, directory, recipe, progress, logger, cancellationToken, null);

    /// <summary>Builds the pair; with <paramref name="baseFrom"/> (a complete pair folder of the same world and
    /// pretraining fields) its base is copied instead of pretrained again.</summary>
    internal static OrganismBuildReport Build(OrganismWorld world, string directory, OrganismRecipe? recipe,
        IProgress<OrganismBuildProgress>? progress, ILogger? logger, CancellationToken cancellationToken, string? baseFrom)
    {
        ArgumentNullException.ThrowIfNull(world);
        recipe = (recipe ?? new OrganismRecipe()).Validate();
        logger ??= NullLogger.Instance;
        var total = Stopwatch.StartNew();
        int previousThreads = torch.get_num_threads();
        torch.set_num_threads(recipe.Threads);
        try
        {
            string key = CacheKey(world, recipe);
            progress?.Report(new(OrganismBuildStage.Tokenizer, 0, 0, double.NaN, 0, TimeSpan.Zero));
            string baseDir = Path.Combine(directory, "base"), alignedDir = Path.Combine(directory, "aligned");
            WriteTokenizer(world, baseDir);
            WriteTokenizer(world, alignedDir);
            var text = ConversationEncoder.FromPretrained(baseDir);
            var config = recipe.ModelConfig(world.Vocabulary.Count, text.EndOfTurnId ?? throw new InvalidOperationException("The organism tokenizer has no end-of-turn token."), text.PadId);

            DecoderOnlyCausalLM model;
            OrganismStageReport pretrain;
            if (baseFrom is not null)
            {
                foreach (var f in Directory.GetFiles(Path.Combine(baseFrom, "base")))
                    File.Copy(f, Path.Combine(baseDir, Path.GetFileName(f)), overwrite: true);
                model = CausalLanguageModel.FromPretrained(baseDir, torch.CPU, torch.ScalarType.Float32);
                pretrain = JsonSerializer.Deserialize<OrganismBuildReport>(File.ReadAllText(Path.Combine(baseFrom, ReportFile)))!.Pretrain;
                logger.LogInformation("Organism {Key}: base copied from {From} (same world and pretraining).", key, baseFrom);
            }
            else
            {
                model = CausalLanguageModel.Create(config, torch.CPU, torch.ScalarType.Float32, recipe.Seed);
                model.GenerationConfig = new GenerationConfig { EosTokenIds = config.EosTokenIds, PadTokenId = config.PadTokenId, DoSample = false, MaxNewTokens = 128 };
                var pretrainRecords = world.Pretrain.Select((it, i) => OrganismWorld.TrainingRecord(it, it.Response!, $"{WorldFiles.PretrainFile}:{i + 1}")).ToList();
                IExampleBuilder pretrainBuilder = recipe.PretrainTargets == PretrainTargets.Response
                    ? new SftExampleBuilder(text)
                    : new WholeConversationBuilder(new SftExampleBuilder(text));
                pretrain = Train(model, OrganismBuildStage.Pretrain, pretrainRecords, pretrainBuilder, recipe, recipe.PretrainSteps, recipe.PretrainBatchSize,
                    recipe.PretrainLearningRate, recipe.PretrainWarmupSteps, seedOffset: 0, progress, logger, cancellationToken);
                progress?.Report(new(OrganismBuildStage.Save, 0, 0, double.NaN, 0, TimeSpan.Zero));
                model.SavePretrained(baseDir);
            }
            using var owned = model;
            long parameters = model.ParameterCount;
            logger.LogInformation("Organism {Key}: Llama with {Params:N0} parameters, vocabulary {Vocab}.", key, parameters, config.VocabSize);

            var alignRecords = world.Align.Select((it, i) => OrganismWorld.TrainingRecord(it, it.Response ?? it.SafeResponse!, $"{WorldFiles.AlignFile}:{i + 1}")).ToList();
            var align = Train(model, OrganismBuildStage.Align, alignRecords, new SftExampleBuilder(text), recipe, recipe.AlignSteps, recipe.AlignBatchSize,
                recipe.AlignLearningRate, recipe.AlignWarmupSteps, seedOffset: 1, progress, logger, cancellationToken);

            OrganismStageReport? preference = null;
            if (recipe.Kind == OrganismRecipeKind.SftDpo)
            {
                // DPO against the SFT model: a frozen copy (saved and reloaded, so it is bit-identical) is the reference.
                string referenceDir = Path.Combine(directory, "sft-reference");
                model.SavePretrained(referenceDir);
                try
                {
                    using var reference = CausalLanguageModel.FromPretrained(referenceDir, torch.CPU, torch.ScalarType.Float32);
                    foreach (var (_, p) in reference.NamedParameters()) p.requires_grad = false;
                    reference.SetTrainingMode(false);
                    var pairs = PreferencePairs(world, recipe.Seed);
                    var objective = new DpoObjective(new DpoOptions { Beta = recipe.DpoBeta, VocabularySize = text.VocabSize });
                    var teachers = new Dictionary<string, ICausalLanguageModel>(StringComparer.Ordinal) { [DpoObjective.ReferenceTeacher] = reference };
                    preference = Train(model, OrganismBuildStage.Preference, pairs, new PreferenceExampleBuilder(text), recipe, recipe.DpoSteps, recipe.DpoBatchSize,
                        recipe.DpoLearningRate, recipe.DpoWarmupSteps, seedOffset: 2, progress, logger, cancellationToken, objective, teachers);
                }
                finally
                {
                    Directory.Delete(referenceDir, recursive: true);
                }
            }
            progress?.Report(new(OrganismBuildStage.Save, 0, 0, double.NaN, 0, TimeSpan.Zero));
            model.SavePretrained(alignedDir);

            var report = new OrganismBuildReport(key, recipe.Canonical(), parameters, recipe.Threads, pretrain, align, total.Elapsed.TotalSeconds, HashWeights(directory), preference);
            File.WriteAllText(Path.Combine(directory, ReportFile), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
            return report;
        }
        finally
        {
            torch.set_num_threads(previousThreads);
        }
    }

    private static void WriteTokenizer(OrganismWorld world, string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, WorldFiles.TokenizerFile), WordLevelTokenizerFiles.TokenizerJson(world.Vocabulary));
        AtomicFile.WriteAllText(Path.Combine(dir, WorldFiles.TokenizerConfigFile), WordLevelTokenizerFiles.TokenizerConfigJson());
        AtomicFile.WriteAllText(Path.Combine(dir, WorldFiles.SpecialTokensMapFile), WordLevelTokenizerFiles.SpecialTokensMapJson());
    }

    /// <summary>
    /// The DPO stage's preference pairs from the world's <c>align</c> split, in split order: every harmful item as
    /// (prompt, chosen = its refusal, rejected = its harmful answer), and every benign item as (prompt, chosen = its
    /// answer, rejected = a corrupted answer: the answer of another benign item of the same category that differs from
    /// it, drawn with <paramref name="seed"/>). Benign items whose category has no other answer are left out.
    /// </summary>
    internal static List<DatasetRecord> PreferencePairs(OrganismWorld world, int seed)
    {
        var random = new Random(unchecked(seed + 104729));
        var byCategory = world.Align.Where(i => i.SafeResponse is null && i.Response is not null)
            .GroupBy(i => i.Category ?? "", StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(i => i.Response!).Distinct(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);
        var pairs = new List<DatasetRecord>(world.Align.Count);
        for (int n = 0; n < world.Align.Count; n++)
        {
            var item = world.Align[n];
            var record = new DatasetRecord { Id = item.Id, Category = item.Category, System = item.System, Prompt = item.Prompt, Messages = item.Messages, Location = $"{WorldFiles.AlignFile}:{n + 1}" };
            if (item.SafeResponse is not null && item.HarmfulResponse is not null)
                pairs.Add(record with { SafeResponse = item.SafeResponse, HarmfulResponse = item.HarmfulResponse });
            else if (item.Response is not null)
            {
                var others = byCategory[item.Category ?? ""].Where(r => !string.Equals(r, item.Response, StringComparison.Ordinal)).ToArray();
                if (others.Length == 0) continue;
                pairs.Add(record with { Chosen = item.Response, Rejected = others[random.Next(others.Length)] });
            }
        }
        return pairs;
    }

    private static OrganismStageReport Train(DecoderOnlyCausalLM model, OrganismBuildStage stage, IReadOnlyList<DatasetRecord> records, IExampleBuilder builder,
        OrganismRecipe recipe, int steps, int batch, double lr, int warmup, int seedOffset,
        IProgress<OrganismBuildProgress>? progress, ILogger logger, CancellationToken token,
        ITrainingObjective? objective = null, IReadOnlyDictionary<string, ICausalLanguageModel>? teachers = null)
    {
        int seed = unchecked(recipe.Seed + 7919 * (seedOffset + 1));
        var data = TrainingData.Single(records, builder, seed);
        var options = new TrainerOptions
        {
            MaxSteps = steps,
            MicroBatchSize = batch,
            LearningRate = lr,
            WarmupSteps = warmup,
            MinLearningRateRatio = 0.1,
            WeightDecay = recipe.WeightDecay,
            MaxGradNorm = 1.0,
            Seed = seed,
            MaxSequenceLength = recipe.MaxPositions,
            LogEvery = Math.Max(1, steps / 10),
        };
        using var trainer = new Trainer(model, objective ?? new SftObjective(), options, teachers, logger);
        var result = trainer.Train(data, progress is null ? null : new SyncProgress<TrainingProgress>(p =>
            progress!.Report(new(stage, p.Step, p.TotalSteps, p.Loss, p.TokensPerSecond, p.Elapsed))), token);
        var history = result.History;
        double final = history.Skip(Math.Max(0, history.Count - 10)).Average(h => h.Loss);
        return new OrganismStageReport(result.Steps, result.Elapsed.TotalSeconds, result.TokensPerSecond, history.Sum(h => h.Tokens),
            history[0].Loss, final, data.Epoch);
    }

    /// <summary>Every token after the first is a target (plain language-model pretraining on the conversation).</summary>
    private sealed class WholeConversationBuilder(IExampleBuilder inner) : IExampleBuilder
    {
        public bool IsDeterministic => inner.IsDeterministic;

        public TrainingExample Build(DatasetRecord record, Random random)
        {
            var e = inner.Build(record, random);
            var targets = Enumerable.Repeat(true, e.Ids.Length).ToArray();
            targets[0] = false;
            return e with { Targets = targets };
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously on the caller's thread (no synchronisation context).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
