using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DeepAlign.Method;
using DeepAlign.Method.Detection;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Spectre.Console;
using DeepAlign.Data;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign train --model DIR --objective sft --data F [--data G --mix 1:4] --output DIR [...]</c>, or for the
/// paper's method and Qi et al.'s baselines <c>deepalign train --objective targeted-completion|augmentation|constrained|sft
/// --base DIR --aligned DIR --harmful F --benign F --output DIR [...]</c> (--aligned is --model: the student starts from
/// it; harmful triples and benign pairs are mixed 1 : 4 unless --mix says otherwise): trains a model (full fine-tuning or
/// LoRA) and writes a Hugging Face folder (merged weights, tokenizer files) to --output, plus the PEFT adapter in
/// --output/adapter under LoRA. Checkpoints go to --output/checkpoints; running the same command again resumes from
/// the newest one. Ctrl+C stops after writing a checkpoint. With <c>--probe N</c>, targeted-completion first runs the
/// gradient signal probe on the aligned model over the first N harmful lines and weights the penalty with its norms
/// (written to --output/probe-norms.json for <c>--probe-norms</c>).
/// </summary>
internal static class TrainCommand
{
    /// <summary>What an objective factory can use.</summary>
    internal sealed record Setup(ParseResult Parse, DecoderOnlyCausalLM Model, string ModelDirectory, IConversationEncoder? Encoder, int? VocabularySize)
    {
        /// <summary>Probe norms measured by <c>--probe N</c> before training (null: --probe-norms or the ramp).</summary>
        public IReadOnlyList<double>? ProbeNorms { get; init; }

        /// <summary>Models the factory loaded (teachers); the command disposes them after training.</summary>
        public List<IDisposable> Owned { get; } = new();
    }

    /// <summary>
    /// An objective selectable with <c>--objective NAME</c>. To add one (e.g. targeted-completion), add an entry
    /// here; factories can read their own options from <see cref="Setup.Parse"/> (declare them in
    /// <see cref="ExtraOptions"/>) and return the frozen teachers they need.
    /// </summary>
    internal sealed record ObjectiveEntry(string Name, string Description,
        Func<Setup, (ITrainingObjective Objective, IReadOnlyDictionary<string, ICausalLanguageModel> Teachers)> Create);

    internal static readonly List<ObjectiveEntry> Objectives = new()
    {
        new("sft", "plain supervised fine-tuning: cross-entropy on response tokens",
            s => (new SftObjective(s.VocabularySize), new Dictionary<string, ICausalLanguageModel>())),
        new("targeted-completion", "the paper's targeted completion: safety-recovery CE + hybrid teacher KL + base-favored penalty + utility anchor; needs --base",
            s => PairObjective(s, AlignmentObjective.TargetedCompletion)),
        new("augmentation", "Qi et al.'s safety-recovery data augmentation (Eq. 2)",
            s => PairObjective(s, AlignmentObjective.Augmentation)),
        new("constrained", "Qi et al.'s token-wise constrained objective (Eq. 3) against the initial model; AdamW beta1 0.5 by default",
            s => PairObjective(s, AlignmentObjective.Constrained)),
    };

    private static readonly Option<string?> BaseOption = new("--base") { Description = "Base model folder (pi_b; targeted-completion)." };
    private static readonly Option<string?> HarmfulOption = new("--harmful") { Description = "JSONL of harmful triples (prompt, harmful_response, safe_response)." };
    private static readonly Option<string?> BenignOption = new("--benign") { Description = "JSONL of benign pairs (prompt, response)." };
    private static readonly Option<double> LambdaKd = new("--lambda-kd") { Description = "targeted-completion: weight of KL(q || pi_theta).", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<double> LambdaPen = new("--lambda-pen") { Description = "targeted-completion: weight of the base-favored penalty.", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<double> LambdaUtil = new("--lambda-util") { Description = "targeted-completion: weight of the utility anchor.", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<string> Utility = new("--utility") { Description = "targeted-completion: utility anchor, kl (KL(pi_a || pi_theta)) or ce (CE on benign responses).", DefaultValueFactory = _ => "kl" };
    private static readonly Option<double> GMax = new("--g-max") { Description = "targeted-completion: g_max of the hybrid teacher (g_j = g_max U_j).", DefaultValueFactory = _ => 0.5 };
    private static readonly Option<string?> ProbeNorms = new("--probe-norms") { Description = "targeted-completion: JSON file with the gradient probe's mean norms n_1..n_J (an array, or an object with \"norms\"); default: the ramp." };
    private static readonly Option<int?> Probe = new("--probe") { Description = "targeted-completion: run the gradient signal probe on the aligned model over the first N harmful lines (prompt + harmful_response, teacher forcing) before training, weight the penalty with its norms and write them to OUTPUT/probe-norms.json (reusable with --probe-norms). Not with --probe-norms." };
    private static readonly Option<double> NoPrefix = new("--p0") { Description = "Probability of no harmful prefix in a safety-recovery context.", DefaultValueFactory = _ => 0.5 };
    private static readonly Option<int> KMax = new("--k-max") { Description = "Longest harmful prefix K_max of a safety-recovery context.", DefaultValueFactory = _ => 100 };

    /// <summary>Options that objectives other than sft declare (added to the command).</summary>
    internal static readonly List<Option> ExtraOptions = new() { BaseOption, HarmfulOption, BenignOption, LambdaKd, LambdaPen, LambdaUtil, Utility, GMax, ProbeNorms, Probe, NoPrefix, KMax };

    /// <summary>The method's options from the command line.</summary>
    /// <param name="parse">The command line.</param>
    /// <param name="vocabularySize">Tokenizer vocabulary size, if known.</param>
    /// <param name="probeNorms">Norms measured by <c>--probe</c>; null reads <c>--probe-norms</c> (or leaves the ramp).</param>
    internal static TargetedCompletionOptions MethodOptions(ParseResult parse, int? vocabularySize, IReadOnlyList<double>? probeNorms = null) => new TargetedCompletionOptions
    {
        DistillationWeight = parse.GetValue(LambdaKd),
        PenaltyWeight = parse.GetValue(LambdaPen),
        UtilityWeight = parse.GetValue(LambdaUtil),
        UtilityAnchor = parse.GetValue(Utility) switch
        {
            "kl" => UtilityAnchor.AlignedKl,
            "ce" => UtilityAnchor.CrossEntropy,
            var u => throw new ArgumentException($"--utility '{u}': use kl or ce."),
        },
        Teacher = new HybridTeacherOptions { MaxMix = parse.GetValue(GMax) },
        ProbeNorms = probeNorms ?? (parse.GetValue(ProbeNorms) is string f ? ReadProbeNorms(f) : null),
        NoPrefixProbability = parse.GetValue(NoPrefix),
        MaxPrefixLength = parse.GetValue(KMax),
        VocabularySize = vocabularySize,
    }.Validate();

    private static double[] ReadProbeNorms(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Probe norms file '{path}' does not exist.", path);
        var node = JsonNode.Parse(File.ReadAllText(path));
        var array = node as JsonArray ?? node?["norms"] as JsonArray
            ?? throw new InvalidDataException($"{path}: expected a JSON array of norms or an object with \"norms\".");
        return array.Select((v, i) => v?.GetValue<double>() ?? throw new InvalidDataException($"{path}: norm {i} is null.")).ToArray();
    }

    private static (ITrainingObjective, IReadOnlyDictionary<string, ICausalLanguageModel>) PairObjective(Setup s, AlignmentObjective kind)
    {
        var options = new TargetedCompletionTrainerOptions { Objective = kind, Method = MethodOptions(s.Parse, s.VocabularySize, s.ProbeNorms) };
        var objective = TargetedCompletionTrainer.CreateObjective(options);
        var aligned = CausalLanguageModel.FromPretrained(s.ModelDirectory, s.Model.Device, s.Model.DType);
        s.Owned.Add(aligned);
        DecoderOnlyCausalLM? baseModel = null;
        if (kind == AlignmentObjective.TargetedCompletion)
        {
            string baseDir = s.Parse.GetValue(BaseOption) ?? throw new ArgumentException("--objective targeted-completion needs --base DIR (the base model).");
            TargetedCompletionTrainer.CheckSameVocabulary(s.ModelDirectory, baseDir);
            baseModel = CausalLanguageModel.FromPretrained(baseDir, s.Model.Device, s.Model.DType);
            s.Owned.Add(baseModel);
        }
        return (objective, TargetedCompletionTrainer.Teachers(objective, aligned, baseModel));
    }

    public static Command Create()
    {
        var model = new Option<string>("--model", "--aligned") { Description = "Hugging Face model folder to start from (the aligned model for the pair objectives).", Required = true };
        var objective = new Option<string>("--objective") { Description = $"Training objective: {string.Join(", ", Objectives.Select(o => $"{o.Name} ({o.Description})"))}.", DefaultValueFactory = _ => "sft" };
        var data = new Option<string[]>("--data") { Description = "JSONL dataset file(s) (DESIGN.md schema or pre-tokenized prompt_ids/response_ids or ids/mask); several files are mixed by --mix. Alternatively --harmful and --benign.", AllowMultipleArgumentsPerToken = true };
        var mix = new Option<string?>("--mix") { Description = "Mixing ratio of the --data files, e.g. 1:4 (default: equal), or harmful:benign with --harmful/--benign (default 1:4)." };
        var field = new Option<string>("--response-field") { Description = "Response to train on: response, safe_response or harmful_response.", DefaultValueFactory = _ => "response" };
        var output = new Option<string>("--output") { Description = "Output folder (model, adapter/, checkpoints/).", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Optimiser steps (default: one epoch over the data)." };
        var epochs = new Option<double?>("--epochs") { Description = "Epochs over the first --data file, converted to steps (ignored with --steps)." };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per micro-batch.", DefaultValueFactory = _ => 8 };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimiser step.", DefaultValueFactory = _ => 1 };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default 2e-5 full, 1e-4 LoRA)." };
        var warmup = new Option<int>("--warmup") { Description = "Linear warmup steps.", DefaultValueFactory = _ => 0 };
        var wd = new Option<double>("--weight-decay") { Description = "AdamW weight decay on matrices (never norms or biases).", DefaultValueFactory = _ => 0.0 };
        var beta1 = new Option<double?>("--beta1") { Description = "AdamW beta1 (default 0.9; 0.5 for the constrained objective, as Qi et al.)." };
        var clip = new Option<double>("--max-grad-norm") { Description = "Gradient clipping norm (0 disables).", DefaultValueFactory = _ => 1.0 };
        var maxLen = new Option<int?>("--max-length") { Description = "Cut longer sequences to this many tokens." };
        var seed = new Option<int>("--seed") { Description = "Seed of data order, dropout and LoRA init.", DefaultValueFactory = _ => 0 };
        var lora = new Option<bool>("--lora") { Description = "Train LoRA adapters instead of all weights." };
        var rank = new Option<int>("--lora-rank") { Description = "LoRA rank.", DefaultValueFactory = _ => 16 };
        var alpha = new Option<double>("--lora-alpha") { Description = "LoRA alpha.", DefaultValueFactory = _ => 32 };
        var dropout = new Option<double>("--lora-dropout") { Description = "LoRA dropout.", DefaultValueFactory = _ => 0.05 };
        var targets = new Option<string>("--lora-targets") { Description = "Comma-separated target projections.", DefaultValueFactory = _ => string.Join(",", LoraOptions.DefaultTargets) };
        var ckEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every N steps (0: only at the end and on Ctrl+C).", DefaultValueFactory = _ => 0 };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N (default: automatic)." };
        var dtype = new Option<string?>("--dtype") { Description = "Weight dtype: float32 (default on CPU), bfloat16, float16." };
        var json = new Option<bool>("--json") { Description = "Print one JSON line per step and a JSON summary instead of a progress bar." };
        var command = new Command("train", "Fine-tune a model (full or LoRA) with a training objective and export a Hugging Face folder.")
        {
            model, objective, data, mix, field, output, steps, epochs, batch, accum, lr, warmup, wd, beta1, clip, maxLen, seed,
            lora, rank, alpha, dropout, targets, ckEvery, device, dtype, json,
        };
        foreach (var o in ExtraOptions) command.Options.Add(o);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string objectiveName = parse.GetValue(objective)!;
            var entry = Objectives.FirstOrDefault(o => o.Name == objectiveName)
                ?? throw new ArgumentException($"Unknown objective '{objectiveName}'; choose one of {string.Join(", ", Objectives.Select(o => o.Name))}.");
            string modelDir = parse.GetValue(model)!;
            string outDir = parse.GetValue(output)!;
            var files = parse.GetValue(data) ?? Array.Empty<string>();
            string? harmfulFile = parse.GetValue(HarmfulOption), benignFile = parse.GetValue(BenignOption);
            bool pairData = harmfulFile is not null || benignFile is not null;
            if (pairData && (harmfulFile is null || benignFile is null)) throw new ArgumentException("--harmful and --benign go together.");
            if (pairData && files.Length > 0) throw new ArgumentException("Give either --data or --harmful/--benign, not both.");
            if (!pairData && files.Length == 0) throw new ArgumentException("Give the training data: --data F [G ...], or --harmful F --benign G.");
            AlignmentObjective? pairKind = entry.Name == "sft" ? AlignmentObjective.Sft : AlignmentObjectives.All.Cast<AlignmentObjective?>().FirstOrDefault(k => AlignmentObjectives.Name(k!.Value) == entry.Name);
            if (!pairData && pairKind is AlignmentObjective.TargetedCompletion or AlignmentObjective.Augmentation)
                throw new ArgumentException($"--objective {entry.Name} trains on harmful triples and benign pairs: give --harmful F --benign G.");
            var weights = ParseMix(parse.GetValue(mix), pairData ? 2 : files.Length, pairData ? new[] { 1.0, 4.0 } : null);
            int? probeCount = parse.GetValue(Probe);
            if (probeCount is int pc)
            {
                if (parse.GetValue(ProbeNorms) is not null)
                    throw new ArgumentException("--probe N and --probe-norms FILE exclude each other: either run the probe now or reuse the norms of an earlier run.");
                if (pairKind != AlignmentObjective.TargetedCompletion)
                    throw new ArgumentException($"--probe is for --objective targeted-completion (its penalty weights); got --objective {entry.Name}.");
                if (pc < 1) throw new ArgumentException($"--probe must be >= 1 (got {pc}).");
            }
            bool useLora = parse.GetValue(lora);
            if (File.Exists(outDir))
                throw new ArgumentException($"--output '{outDir}' is an existing file; give a folder (it is created if missing).");

            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var dt = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            using var student = CausalLanguageModel.FromPretrained(modelDir, dev, dt);
            // Pre-tokenized data needs no chat template: without one the encoder stays null, and only text lines fail (naming the line).
            var studentTokenizer = File.Exists(Path.Combine(modelDir, "tokenizer.json")) ? HfTokenizer.FromPretrained(modelDir) : null;
            ConversationEncoder? encoder = studentTokenizer is { ChatTemplate: not null } ? ConversationEncoder.For(studentTokenizer) : null;
            TrainingData trainingData;
            int firstCount;
            IReadOnlyList<double>? probedNorms = null;
            if (pairData)
            {
                var harmfulRecords = JsonlDatasetReader.ReadFile(harmfulFile!);
                if (probeCount is int n)
                    probedNorms = RunProbe(student, harmfulRecords, encoder, encoder?.VocabSize, n, parse.GetValue(KMax), parse.GetValue(maxLen), outDir, parse.GetValue(json) || Console.IsOutputRedirected, parse.GetValue(json));
                var pairOptions = new TargetedCompletionTrainerOptions
                {
                    Objective = pairKind ?? AlignmentObjective.Sft,
                    Method = MethodOptions(parse, encoder?.VocabSize, probedNorms) with { HarmfulShare = weights[0], BenignShare = weights[1] },
                    Trainer = new TrainerOptions { Seed = parse.GetValue(seed) },
                };
                trainingData = TargetedCompletionTrainer.CreateData(harmfulRecords, JsonlDatasetReader.ReadFile(benignFile!), encoder, pairOptions);
                firstCount = harmfulRecords.Count;
            }
            else
            {
                var builder = new SftExampleBuilder(encoder, parse.GetValue(field)!);
                var sources = files.Select((f, i) => new DataSource(Path.GetFileNameWithoutExtension(f), JsonlDatasetReader.ReadFile(f), builder, weights[i])).ToArray();
                if (sources.Select(s => s.Name).Distinct().Count() != sources.Length)
                    sources = sources.Select((s, i) => s with { Name = $"{s.Name}#{i}" }).ToArray();
                trainingData = new TrainingData(sources, parse.GetValue(seed));
                firstCount = sources[0].Records.Count;
            }

            LoraOptions? loraOptions = null;
            if (useLora)
            {
                loraOptions = new LoraOptions
                {
                    Rank = parse.GetValue(rank), Alpha = parse.GetValue(alpha), Dropout = parse.GetValue(dropout),
                    TargetModules = parse.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    InitSeed = parse.GetValue(seed),
                };
                LoraApplier.Apply(student, loraOptions);
            }
            int micro = parse.GetValue(batch), ga = parse.GetValue(accum);
            int stepCount = parse.GetValue(steps) ?? (int)Math.Max(1, Math.Ceiling((parse.GetValue(epochs) ?? 1.0) * firstCount * weights.Sum() / weights[0] / (micro * ga)));
            double clipNorm = parse.GetValue(clip);
            var options = new TrainerOptions
            {
                MaxSteps = stepCount, MicroBatchSize = micro, GradientAccumulationSteps = ga,
                LearningRate = parse.GetValue(lr) ?? (useLora ? 1e-4 : 2e-5), WarmupSteps = parse.GetValue(warmup),
                WeightDecay = parse.GetValue(wd), Beta1 = parse.GetValue(beta1) ?? (pairKind is AlignmentObjective k ? TargetedCompletionTrainer.DefaultTrainerOptions(k).Beta1 : 0.9), MaxGradNorm = clipNorm > 0 ? clipNorm : null,
                MaxSequenceLength = parse.GetValue(maxLen), Seed = parse.GetValue(seed),
                CheckpointDirectory = Path.Combine(outDir, "checkpoints"), CheckpointEvery = parse.GetValue(ckEvery),
            };
            var setup = new Setup(parse, student, modelDir, encoder, encoder?.VocabSize) { ProbeNorms = probedNorms };
            using var owned = new DisposableList(setup.Owned);
            var (trainingObjective, teachers) = entry.Create(setup);
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                using var trainer = new Trainer(student, trainingObjective, options, teachers);
                TrainingResult result;
                if (parse.GetValue(json) || Console.IsOutputRedirected)
                {
                    result = trainer.Train(trainingData, new SyncProgress(p => Console.WriteLine(StepJson(p))), cts.Token);
                }
                else
                {
                    result = null!;
                    AnsiConsole.Progress()
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                        .Start(ctx =>
                        {
                            var task = ctx.AddTask($"{entry.Name}", maxValue: stepCount);
                            result = trainer.Train(trainingData, new SyncProgress(p =>
                            {
                                task.Value = p.Step;
                                task.Description = string.Create(CultureInfo.InvariantCulture, $"{entry.Name} step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} {p.TokensPerSecond:F0} tok/s");
                            }), cts.Token);
                        });
                }
                if (loraOptions is not null)
                    TrainingExport.SaveAdapter(student, loraOptions, Path.Combine(outDir, "adapter"), modelDir);
                TrainingExport.SaveModel(student, outDir, modelDir); // merges LoRA adapters into the weights
                var last = result.History.LastOrDefault();
                if (parse.GetValue(json))
                    Console.WriteLine(new JsonObject
                    {
                        ["steps"] = result.Steps, ["resumed_from"] = result.ResumedFromStep, ["final_loss"] = last?.Loss,
                        ["tokens_per_second"] = result.TokensPerSecond, ["output"] = Path.GetFullPath(outDir),
                    }.ToJsonString());
                else
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"trained {result.Steps} steps (resumed from {result.ResumedFromStep}), final loss {last?.Loss:F4}, {result.TokensPerSecond:F0} tok/s; model written to {outDir}"));
                return ExitCodes.Success;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        }));
        return command;
    }

    /// <summary>Name of the file <c>--probe</c> writes in the output folder.</summary>
    internal const string ProbeNormsFile = "probe-norms.json";

    /// <summary>
    /// The probe inputs of <c>--probe N</c>: the first <paramref name="count"/> harmful lines as prompt + harmful reference,
    /// tokenized exactly as the safety-recovery builder tokenizes them (pre-tokenized ids as they are).
    /// </summary>
    internal static List<ProfileInput> ProbeInputs(IReadOnlyList<DatasetRecord> harmful, IConversationEncoder? encoder, int count) =>
        harmful.Take(count).Select(r =>
        {
            IConversationEncoder Need() => encoder ?? throw new DatasetFormatException($"{r.Location}: the line is text but the aligned model has no tokenizer.json.");
            long[] prompt = r.PromptIds ?? Need().EncodePrompt(r.PromptMessages());
            long[] response = r.HarmfulResponseIds
                ?? (r.HarmfulResponse is string h ? Need().EncodeResponse(h, appendEndOfTurn: false)
                    : throw new DatasetFormatException($"{r.Location}: a safety-recovery line needs \"harmful_response\"."));
            return new ProfileInput(prompt, response) { Id = r.Id, Location = r.Location };
        }).ToList();

    /// <summary>
    /// J for <c>--probe</c>: the largest response position a penalty target can reach, max over the harmful lines of
    /// min(K_max, |h|) + |r| (r with its end-of-turn token), capped by --max-length. Positions past J take w_J.
    /// </summary>
    internal static int ProbePositions(IReadOnlyList<DatasetRecord> harmful, IConversationEncoder? encoder, int maxPrefix, int? maxLength)
    {
        int j = 1;
        foreach (var r in harmful)
        {
            int h = r.HarmfulResponseIds?.Length ?? (r.HarmfulResponse is string ht && encoder is not null ? encoder.EncodeResponse(ht, appendEndOfTurn: false).Length : 0);
            int s = r.SafeResponseIds?.Length ?? (r.SafeResponse is string st && encoder is not null ? encoder.EncodeResponse(st, appendEndOfTurn: true).Length : 0);
            j = Math.Max(j, Math.Min(maxPrefix, h) + s);
        }
        return maxLength is int m ? Math.Max(1, Math.Min(j, m)) : j;
    }

    /// <summary>Runs the gradient signal probe for <c>--probe N</c> on the (untouched) student and writes OUTPUT/probe-norms.json.</summary>
    private static IReadOnlyList<double> RunProbe(DecoderOnlyCausalLM aligned, IReadOnlyList<DatasetRecord> harmful, IConversationEncoder? encoder, int? vocabSize,
        int count, int maxPrefix, int? maxLength, string outDir, bool plain, bool json)
    {
        var inputs = ProbeInputs(harmful, encoder, count);
        var probeOptions = new GradientProbeOptions { MaxPositions = ProbePositions(harmful, encoder, maxPrefix, maxLength), MaxSequences = inputs.Count };
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        GradientProbeResult result;
        try
        {
            if (plain)
            {
                result = GradientSignalProbe.Run(aligned, inputs, probeOptions, vocabSize, null, cts.Token);
            }
            else
            {
                result = null!;
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"gradient probe 0/{inputs.Count}", maxValue: inputs.Count);
                        result = GradientSignalProbe.Run(aligned, inputs, probeOptions, vocabSize, new SyncProgress<int>(n =>
                        {
                            task.Value = n;
                            task.Description = $"gradient probe {n}/{inputs.Count}";
                        }), cts.Token);
                    });
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var norms = result.MeanNorms;
        var file = new JsonObject
        {
            ["norms"] = new JsonArray(norms.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
            ["positions"] = probeOptions.MaxPositions,
            ["last_layers"] = probeOptions.LastLayers,
            ["sequences"] = result.Sequences,
            ["parameters"] = new JsonArray(result.ParameterNames.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
            ["seconds"] = seconds,
        };
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, ProbeNormsFile);
        AtomicFile.WriteAllText(path, file.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        if (json)
            Console.WriteLine(new JsonObject
            {
                ["probe_sequences"] = result.Sequences, ["probe_positions"] = norms.Count, ["probe_seconds"] = seconds, ["probe_norms"] = Path.GetFullPath(path),
            }.ToJsonString());
        else
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gradient probe: {result.Sequences} sequences, {norms.Count} positions (J = {probeOptions.MaxPositions}) in {seconds:F2} s; norms written to {path}"));
        return norms;
    }

    private sealed class DisposableList(List<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var d in items) d.Dispose();
        }
    }

    private static double[] ParseMix(string? mix, int files, double[]? fallback = null)
    {
        if (mix is null) return fallback ?? Enumerable.Repeat(1.0, files).ToArray();
        var parts = mix.Split(':');
        if (parts.Length != files)
            throw new ArgumentException($"--mix '{mix}' has {parts.Length} parts but {files} --data file(s) were given.");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var w) && w > 0 ? w
            : throw new ArgumentException($"--mix '{mix}': '{p}' is not a positive number.")).ToArray();
    }

    private static string StepJson(TrainingProgress p)
    {
        var terms = new JsonObject();
        foreach (var (k, v) in p.Terms) terms[k] = v;
        return new JsonObject
        {
            ["step"] = p.Step, ["total"] = p.TotalSteps, ["loss"] = p.Loss, ["terms"] = terms, ["lr"] = p.LearningRate,
            ["grad_norm"] = p.GradientNorm, ["tokens_per_second"] = p.TokensPerSecond, ["eta_seconds"] = p.EstimatedRemaining.TotalSeconds,
        }.ToJsonString();
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }

    private sealed class SyncProgress<T>(Action<T> onReport) : IProgress<T>
    {
        public void Report(T value) => onReport(value);
    }
}
