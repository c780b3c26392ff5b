using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DeepAlign.Method;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Training;
using Spectre.Console;

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
/// (written to --output/probe-norms.json for <c>--probe-norms</c>). The command parses options and calls
/// <see cref="SftTrainer.TrainFromFolders"/> (--data) or <see cref="TargetedCompletionTrainer.TrainFromFolders"/>
/// (--harmful/--benign).
/// </summary>
internal static class TrainCommand
{
    private static readonly Option<string?> BaseOption = new("--base") { Description = "Base model folder (pi_b; targeted-completion)." };
    private static readonly Option<string?> HarmfulOption = new("--harmful") { Description = "Dataset (JSONL or CSV, by extension and header) of harmful triples (prompt, harmful_response, safe_response)." };
    private static readonly Option<string?> BenignOption = new("--benign") { Description = "Dataset (JSONL or CSV) of benign pairs (prompt, response)." };
    private static readonly Option<double> LambdaKd = new("--lambda-kd") { Description = "targeted-completion: weight of KL(q || pi_theta).", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<double> LambdaPen = new("--lambda-pen") { Description = "targeted-completion: weight of the base-favored penalty.", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<double> LambdaUtil = new("--lambda-util") { Description = "targeted-completion: weight of the utility anchor.", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<string> Utility = new("--utility") { Description = "targeted-completion: utility anchor, kl (KL(pi_a || pi_theta)) or ce (CE on benign responses).", DefaultValueFactory = _ => "kl" };
    private static readonly Option<double> GMax = new("--g-max") { Description = "targeted-completion: g_max of the hybrid teacher (g_j = g_max U_j).", DefaultValueFactory = _ => 0.5 };
    private static readonly Option<string?> ProbeNorms = new("--probe-norms") { Description = "targeted-completion: JSON file with the gradient probe's mean norms n_1..n_J (an array, or an object with \"norms\"); default: the ramp." };
    private static readonly Option<int?> Probe = new("--probe") { Description = "targeted-completion: run the gradient signal probe on the aligned model over the first N harmful lines (prompt + harmful_response, teacher forcing) before training, weight the penalty with its norms and write them to OUTPUT/probe-norms.json (reusable with --probe-norms). Not with --probe-norms." };
    private static readonly Option<double> NoPrefix = new("--p0") { Description = "Probability of no harmful prefix in a safety-recovery context.", DefaultValueFactory = _ => 0.5 };
    private static readonly Option<int> KMax = new("--k-max") { Description = "Longest harmful prefix K_max of a safety-recovery context.", DefaultValueFactory = _ => 100 };
    private static readonly Option<double> Beta = new("--beta") { Description = "dpo: beta, the strength of the implicit KL penalty (TRL default 0.1).", DefaultValueFactory = _ => 0.1 };
    private static readonly Option<string> LossType = new("--loss-type") { Description = "dpo: sigmoid (DPO, with --label-smoothing: conservative DPO) or ipo.", DefaultValueFactory = _ => "sigmoid" };
    private static readonly Option<double> LabelSmoothing = new("--label-smoothing") { Description = "dpo: label smoothing in [0, 0.5) (conservative DPO; sigmoid only).", DefaultValueFactory = _ => 0.0 };
    private static readonly Option<string?> Reference = new("--ref") { Description = "dpo: reference model folder (default: the starting model; under --lora, the student with its adapters disabled)." };

    /// <summary>The command-line name of DPO (not an <see cref="AlignmentObjective"/>: it trains on preference pairs, not on harmful triples).</summary>
    internal const string Dpo = "dpo";

    /// <summary>The objectives on the command line, with a one-line description each.</summary>
    internal static readonly (AlignmentObjective Objective, string Description)[] Objectives =
    [
        (AlignmentObjective.Sft, "plain supervised fine-tuning: cross-entropy on response tokens (--data, or --harmful/--benign)"),
        (AlignmentObjective.TargetedCompletion, "the paper's targeted completion: safety-recovery CE + hybrid teacher KL + base-favored penalty + utility anchor; needs --base"),
        (AlignmentObjective.Augmentation, "Qi et al.'s safety-recovery data augmentation (Eq. 2)"),
        (AlignmentObjective.Constrained, "Qi et al.'s token-wise constrained objective (Eq. 3) against the initial model; AdamW beta1 0.5 by default"),
    ];

    private static string ObjectiveHelp() =>
        string.Join(", ", Objectives.Select(o => $"{AlignmentObjectives.Name(o.Objective)} ({o.Description})"))
        + $", {Dpo} (direct preference optimisation on preference pairs: --data F with chosen/rejected or harmful lines; --beta, --loss-type, --label-smoothing, --ref; lr default 1e-6 full, 1e-4 LoRA)";

    /// <summary>The method's options from the command line.</summary>
    internal static TargetedCompletionOptions MethodOptions(ParseResult parse) => new TargetedCompletionOptions
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
        ProbeNorms = parse.GetValue(ProbeNorms) is string f ? TargetedCompletionProbe.ReadNorms(f) : null,
        NoPrefixProbability = parse.GetValue(NoPrefix),
        MaxPrefixLength = parse.GetValue(KMax),
    }.Validate();

    /// <summary>DPO's options from the command line.</summary>
    internal static DpoOptions DpoSettings(ParseResult parse) => new DpoOptions
    {
        Beta = parse.GetValue(Beta),
        LossType = parse.GetValue(LossType) switch
        {
            "sigmoid" => DpoLossType.Sigmoid,
            "ipo" => DpoLossType.Ipo,
            var t => throw new ArgumentException($"--loss-type '{t}': use sigmoid or ipo."),
        },
        LabelSmoothing = parse.GetValue(LabelSmoothing),
    }.Validate();

    public static Command Create()
    {
        var model = new Option<string>("--model", "--aligned") { Description = "Hugging Face model folder to start from (the aligned model for the pair objectives).", Required = true };
        var objective = new Option<string>("--objective") { Description = $"Training objective: {ObjectiveHelp()}.", DefaultValueFactory = _ => "sft" };
        var data = new Option<string[]>("--data") { Description = "Dataset file(s): JSONL (docs/data-formats.md schema or pre-tokenized prompt_ids/response_ids or ids/mask) or CSV (AdvBench, HarmBench or JSONL field names as columns); several files are mixed by --mix. Alternatively --harmful and --benign.", AllowMultipleArgumentsPerToken = true };
        var mix = new Option<string?>("--mix") { Description = "Mixing ratio of the --data files, e.g. 1:4 (default: equal), or harmful:benign with --harmful/--benign (default 1:4)." };
        var field = new Option<string>("--response-field") { Description = "Response to train on: response, safe_response or harmful_response.", DefaultValueFactory = _ => "response" };
        var output = new Option<string>("--output") { Description = "Output folder (model, adapter/, checkpoints/).", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Optimiser steps (default: one epoch over the data)." };
        var epochs = new Option<double?>("--epochs") { Description = "Epochs over the first --data file (or the harmful triples), converted to steps (ignored with --steps)." };
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
            BaseOption, HarmfulOption, BenignOption, LambdaKd, LambdaPen, LambdaUtil, Utility, GMax, ProbeNorms, Probe, NoPrefix, KMax,
            Beta, LossType, LabelSmoothing, Reference,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string objectiveName = parse.GetValue(objective)!.Trim();
            bool dpo = string.Equals(objectiveName, Dpo, StringComparison.OrdinalIgnoreCase);
            var kind = dpo ? AlignmentObjective.Sft : AlignmentObjectives.Parse(objectiveName);
            string modelDir = parse.GetValue(model)!, outDir = parse.GetValue(output)!;
            var files = parse.GetValue(data) ?? Array.Empty<string>();
            string? harmfulFile = parse.GetValue(HarmfulOption), benignFile = parse.GetValue(BenignOption);
            bool pairData = harmfulFile is not null || benignFile is not null;
            if (pairData && (harmfulFile is null || benignFile is null)) throw new ArgumentException("--harmful and --benign go together.");
            if (pairData && files.Length > 0) throw new ArgumentException("Give either --data or --harmful/--benign, not both.");
            if (!pairData && files.Length == 0) throw new ArgumentException("Give the training data: --data F [G ...], or --harmful F --benign G.");
            if (dpo && (pairData || files.Length != 1))
                throw new ArgumentException("--objective dpo trains on one preference file: give --data F (lines with chosen/rejected, or harmful lines with safe_response/harmful_response).");
            if (!dpo && parse.GetValue(Reference) is not null) throw new ArgumentException("--ref is for --objective dpo.");
            if (!pairData && kind != AlignmentObjective.Sft)
                throw new ArgumentException($"--objective {AlignmentObjectives.Name(kind)} trains on harmful triples and benign pairs: give --harmful F --benign G.");
            if (parse.GetValue(Probe) is not null && parse.GetValue(ProbeNorms) is not null)
                throw new ArgumentException("--probe N and --probe-norms FILE exclude each other: either run the probe now or reuse the norms of an earlier run.");
            if (parse.GetValue(Probe) is int pc && kind != AlignmentObjective.TargetedCompletion)
                throw new ArgumentException($"--probe is for --objective targeted-completion (its penalty weights); got --objective {AlignmentObjectives.Name(kind)}.");
            if (parse.GetValue(Probe) is < 1) throw new ArgumentException($"--probe must be >= 1 (got {parse.GetValue(Probe)}).");
            var weights = ParseMix(parse.GetValue(mix), pairData ? 2 : files.Length, pairData ? [1.0, 4.0] : null);
            bool useLora = parse.GetValue(lora);
            if (File.Exists(outDir))
                throw new ArgumentException($"--output '{outDir}' is an existing file; give a folder (it is created if missing).");
            double clipNorm = parse.GetValue(clip);
            var loop = new TrainerOptions
            {
                MaxSteps = parse.GetValue(steps) ?? 1, MicroBatchSize = parse.GetValue(batch), GradientAccumulationSteps = parse.GetValue(accum),
                LearningRate = parse.GetValue(lr) ?? (useLora ? 1e-4 : dpo ? DpoTrainer.DefaultTrainerOptions.LearningRate : 2e-5), WarmupSteps = parse.GetValue(warmup),
                WeightDecay = parse.GetValue(wd), Beta1 = parse.GetValue(beta1) ?? TargetedCompletionTrainerOptions.DefaultTrainerOptions(kind).Beta1,
                MaxGradNorm = clipNorm > 0 ? clipNorm : null, MaxSequenceLength = parse.GetValue(maxLen), Seed = parse.GetValue(seed),
                CheckpointDirectory = Path.Combine(outDir, "checkpoints"), CheckpointEvery = parse.GetValue(ckEvery),
                Schedule = dpo ? DpoTrainer.DefaultTrainerOptions.Schedule : new TrainerOptions().Schedule,
            };
            double? epochCount = parse.GetValue(steps) is null ? parse.GetValue(epochs) ?? 1.0 : null;
            LoraOptions? loraOptions = useLora ? new LoraOptions
            {
                Rank = parse.GetValue(rank), Alpha = parse.GetValue(alpha), Dropout = parse.GetValue(dropout),
                TargetModules = parse.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                InitSeed = parse.GetValue(seed),
            } : null;
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var dt = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            bool jsonOut = parse.GetValue(json), plain = jsonOut || Console.IsOutputRedirected;
            string name = dpo ? Dpo : AlignmentObjectives.Name(kind);

            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                var run = WithProgress(plain, name, (progress, probeProgress) => dpo
                    ? DpoTrainer.TrainFromFolders(new DpoPaths(modelDir, files[0], outDir, parse.GetValue(Reference)),
                        new DpoTrainerOptions { Dpo = DpoSettings(parse), Trainer = loop, Lora = loraOptions, Epochs = epochCount },
                        dev, dt, null, progress, cts.Token)
                    : pairData
                    ? TargetedCompletionTrainer.TrainFromFolders(
                        new TargetedCompletionPaths(modelDir, parse.GetValue(BaseOption), harmfulFile!, benignFile!, outDir),
                        new TargetedCompletionTrainerOptions
                        {
                            Objective = kind, Method = MethodOptions(parse) with { HarmfulShare = weights[0], BenignShare = weights[1] },
                            Trainer = loop, Lora = loraOptions, ProbeSequences = parse.GetValue(Probe), Epochs = epochCount,
                        }, dev, dt, null, progress, probeProgress, cts.Token)
                    : SftTrainer.TrainFromFolders(new FineTuningPaths(modelDir, files, outDir),
                        new SftTrainingOptions { Trainer = loop, Lora = loraOptions, DataWeights = weights, ResponseField = parse.GetValue(field)!, Epochs = epochCount },
                        dev, dt, null, progress, cts.Token));
                PrintSummary(run, jsonOut);
                return ExitCodes.Success;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        }));
        return command;
    }

    /// <summary>Runs the training with JSON step lines (plain) or a progress bar per phase (probe, training).</summary>
    private static TrainingRun WithProgress(bool plain, string name, Func<IProgress<TrainingProgress>, IProgress<int>, TrainingRun> train)
    {
        if (plain) return train(new SyncProgress<TrainingProgress>(p => Console.WriteLine(StepJson(p))), new SyncProgress<int>(_ => { }));
        TrainingRun? run = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                ProgressTask? probe = null, task = null;
                run = train(new SyncProgress<TrainingProgress>(p =>
                {
                    task ??= ctx.AddTask(name, maxValue: p.TotalSteps);
                    task.Value = p.Step;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{name} step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} {p.TokensPerSecond:F0} tok/s");
                }), new SyncProgress<int>(n =>
                {
                    probe ??= ctx.AddTask("gradient probe", maxValue: 1);
                    probe.Description = $"gradient probe: {n} sequences";
                }));
            });
        return run!;
    }

    private static void PrintSummary(TrainingRun run, bool json)
    {
        var result = run.Training;
        var last = result.History.LastOrDefault();
        if (run.ProbeNorms is { } norms)
        {
            if (json)
                Console.WriteLine(new JsonObject
                {
                    ["probe_positions"] = norms.Count, ["probe_seconds"] = run.ProbeSeconds, ["probe_norms"] = run.ProbeNormsFile,
                }.ToJsonString());
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"gradient probe: {norms.Count} positions in {run.ProbeSeconds:F2} s; norms written to {run.ProbeNormsFile}"));
        }
        if (json)
            Console.WriteLine(new JsonObject
            {
                ["steps"] = result.Steps, ["resumed_from"] = result.ResumedFromStep, ["final_loss"] = last?.Loss,
                ["tokens_per_second"] = result.TokensPerSecond, ["output"] = run.OutputDirectory,
            }.ToJsonString());
        else
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"trained {result.Steps} steps (resumed from {result.ResumedFromStep}), final loss {last?.Loss:F4}, {result.TokensPerSecond:F0} tok/s; model written to {run.OutputDirectory}"));
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

    private sealed class SyncProgress<T>(Action<T> onReport) : IProgress<T>
    {
        public void Report(T value) => onReport(value);
    }
}
