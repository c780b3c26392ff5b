using System.CommandLine;
using System.Globalization;
using DeepAlign.Evaluation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Organism;
using DeepAlign.Runtime;
using DeepAlign.Data;
using DeepAlign.Text;
using DeepAlign.Evaluation.Judges;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign attack --model DIR --input HARMFUL.jsonl|harmful_behaviors.csv [--format F] [--targets T.json] [--base DIR] [--contrastive-alpha A] [--judge-spec judge.json]
/// [--chat-judge DIR [--chat-judge-template harmbench|strongreject] [--chat-judge-cache F]]
/// [--prefill 5,10,20,40] [--sweep] [--max-prompts N] [--max-new-tokens N] [--seed S] [--shard I/N] [--output F] [--json]</c>:
/// runs the evaluation harness's attacks (plain, prefilling, rank-assisted when --base is given, optional decoding
/// sweep) against one model, or against contrastive decoding of the model with --base when --contrastive-alpha is set.
/// With <c>--shard I/N</c> only the prompts whose index mod N is I are attacked (seeds from the dataset index) and
/// --output receives a partial report for <c>deepalign merge</c> (docs/scale-out.md). The results carry every prompt's
/// verdicts keyed by dataset id and prompt hash (unless <c>--no-items</c>) and the run's provenance (dataset fingerprint,
/// models, judges, attack settings): docs/data-formats.md, "Results files".
/// </summary>
internal static class AttackCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model under attack (HF folder with tokenizer and chat template).", Required = true };
        var input = new Option<string>("--input") { Description = "Harmful prompts with the harmful_response the prefilling attacks force: JSONL (docs/data-formats.md), AdvBench harmful_behaviors.csv (target), or HarmBench behaviors CSV with --targets.", Required = true };
        var dataset = new DatasetArguments();
        var noItems = new Option<bool>("--no-items") { Description = "Leave the per-prompt verdicts (keyed by dataset id and prompt hash) out of the results JSON." };
        var baseDir = new Option<string?>("--base") { Description = "Base model folder: enables the rank-assisted attack and contrastive decoding." };
        var cdAlpha = new Option<double?>("--contrastive-alpha") { Description = "Attack contrastive decoding (full rule, constant alpha, beta_cd 0.1) instead of the plain model; needs --base." };
        var judgeSpec = new Option<string?>("--judge-spec") { Description = "judge.json of an organism world (exact content judge, primary); the keyword refusal judge always runs." };
        var prefill = new Option<string>("--prefill") { Description = "Prefilling lengths K, comma separated.", DefaultValueFactory = _ => "5,10,20,40" };
        var sweep = new Option<bool>("--sweep") { Description = "Also run the decoding-parameter sweep (30 settings)." };
        var maxPrompts = new Option<int?>("--max-prompts") { Description = "Use at most this many prompts." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Largest answer length.", DefaultValueFactory = _ => 64 };
        var batchSize = new Option<int>("--batch-size") { Description = "Rows per generation call (the sweep's settings share batches).", DefaultValueFactory = _ => 160 };
        var seed = new Option<long>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--output") { Description = "Write the results JSON here (atomically)." };
        var json = new Option<bool>("--json") { Description = "Print the results JSON instead of the Markdown table." };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N." };
        var chatJudge = new ChatJudgeArguments();
        var shardOption = new Option<string?>("--shard") { Description = "Attack only shard I of N (prompts whose 0-based index mod N is I); --output then gets a partial report for deepalign merge." };
        var command = new Command("attack", "Attack a model (plain, prefilling, rank-assisted, decoding sweep) and judge the answers.")
        {
            model, input, baseDir, cdAlpha, judgeSpec, prefill, sweep, maxPrompts, maxNew, batchSize, seed, output, json, device, shardOption, noItems,
        };
        foreach (var o in chatJudge.All) command.Options.Add(o);
        dataset.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string modelPath = parse.GetValue(model)!, inputPath = parse.GetValue(input)!;
            string? basePath = parse.GetValue(baseDir);
            double? alpha = parse.GetValue(cdAlpha);
            if (alpha is not null && basePath is null) throw new ArgumentException("--contrastive-alpha needs --base.");
            if (!File.Exists(inputPath)) throw new FileNotFoundException($"Input file not found: {inputPath}", inputPath);
            var lengths = parse.GetValue(prefill)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) && k > 0 ? k
                    : throw new ArgumentException($"--prefill: '{s}' is not a positive token count.")).ToArray();
            var shard = parse.GetValue(shardOption) is string sh ? ShardSpec.Parse(sh) : (ShardSpec?)null;
            if (shard is not null && parse.GetValue(output) is null) throw new ArgumentException("--shard needs --output (the partial report).");
            var format = dataset.Resolve(parse, inputPath);
            var all = dataset.Stream(parse, inputPath, format).Take(parse.GetValue(maxPrompts) ?? int.MaxValue).ToArray();
            if (all.Length == 0) throw new DatasetFormatException($"{inputPath}: the dataset is empty.");
            foreach (var r in all)
                if (r.HarmfulResponse is null)
                    throw new DatasetFormatException($"{r.Location}: the record has no harmful_response, the prefix the prefilling attacks force " +
                        "(AdvBench gives it as target; HarmBench keeps its targets apart: pass --targets harmbench_targets_text.json).");
            var part = (shard ?? ShardSpec.Whole).Select(all).ToArray();
            var harmful = part.Select(t => t.Item).ToArray();
            var judges = new List<NamedJudge>();
            var judgeInfo = new Dictionary<string, string>(StringComparer.Ordinal);
            if (parse.GetValue(judgeSpec) is { } spec)
            {
                judges.Add(new NamedJudge("content", new ExactContentJudge(JudgeSpec.Read(spec))));
                judgeInfo["content"] = $"exact content judge, spec {spec} ({DatasetFingerprint.OfFile(spec)})";
            }
            judges.Add(new NamedJudge("keyword", new KeywordRefusalJudge()));
            judgeInfo["keyword"] = "keyword refusal judge";
            var options = new SafetyEvaluationOptions
            {
                PrefillLengths = lengths, RankAssisted = basePath is not null, DecodingSweep = parse.GetValue(sweep), Utility = false,
                MaxNewTokens = parse.GetValue(maxNew), Seed = parse.GetValue(seed),
                BatchSize = parse.GetValue(batchSize), ItemResults = !parse.GetValue(noItems),
            }.Validate();

            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            using var chat = chatJudge.Load(parse, dev);
            if (chat is not null) judges.Add(chat.Judge);
            var text = ConversationEncoder.FromPretrained(modelPath);
            using var target = CausalLanguageModel.FromPretrained(modelPath, dev);
            using var baseModel = basePath is null ? null : CausalLanguageModel.FromPretrained(basePath, dev);
            var evaluator = new SafetyEvaluator(text, harmful, Array.Empty<DatasetRecord>(), judges, options, baseModel,
                harmfulRecordIndices: part.Select(t => t.RecordIndex).ToArray());
            using IDefense defense = alpha is double a ? Contrastive(target, baseModel!, text, a)
                : ScorerDefense.ForModel(Path.GetFileName(Path.TrimEndingDirectorySeparator(modelPath)), target, text.VocabSize);
            var result = evaluator.Evaluate(defense);
            if (shard is ShardSpec done)
            {
                var partial = AttackPartialReport.Create(done, DatasetFingerprint.OfFile(inputPath), all.Length, evaluator, result);
                string partialPath = AtomicFile.WriteAllText(parse.GetValue(output)!, partial.ToJson());
                Console.WriteLine(parse.GetValue(json) ? partial.ToJson()
                    : string.Create(CultureInfo.InvariantCulture, $"shard {done}: {harmful.Length} of {all.Length} prompts; wrote {partialPath}"));
                return ExitCodes.Success;
            }
            var models = new Dictionary<string, string>(StringComparer.Ordinal) { ["target"] = modelPath };
            if (basePath is not null) models["base"] = basePath;
            var report = EvaluationReport.Create(new[] { new SeedRun(options.Seed, new[] { result }) }) with
            {
                Provenance = new RunProvenance
                {
                    Tool = "deepalign " + ToolVersion(),
                    Dataset = new DatasetProvenance(inputPath, DatasetArguments.Name(format), DatasetFingerprint.OfFile(inputPath), all.Length),
                    Models = models, Judges = judgeInfo, AttackConfig = options,
                },
            };
            if (parse.GetValue(output) is { } outPath) AtomicFile.WriteAllText(outPath, report.ToJson());
            Console.WriteLine(parse.GetValue(json) ? report.ToJson() : report.ToMarkdown());
            return ExitCodes.Success;
        }));
        return command;
    }

    private static string ToolVersion()
    {
        var assembly = typeof(SafetyEvaluator).Assembly;
        var info = (System.Reflection.AssemblyInformationalVersionAttribute?)Attribute.GetCustomAttribute(assembly, typeof(System.Reflection.AssemblyInformationalVersionAttribute));
        return info?.InformationalVersion ?? assembly.GetName().Version?.ToString() ?? "unknown";
    }

    private static ScorerDefense Contrastive(ICausalLanguageModel aligned, ICausalLanguageModel baseModel, ConversationEncoder text, double alpha)
    {
        var scorer = new ContrastiveScorer(aligned, baseModel, new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(alpha).Validate(), VocabSize = text.VocabSize });
        var stops = GenerationArguments.StopIds(aligned.Config.EosTokenIds, text.Tokenizer);
        return new ScorerDefense($"contrastive(alpha={alpha.ToString(CultureInfo.InvariantCulture)})", scorer, stops, text.PadId, scorer);
    }
}
