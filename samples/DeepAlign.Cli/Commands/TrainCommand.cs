using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Spectre.Console;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign train --model DIR --objective sft --data F [--data G --mix 1:4] --output DIR [...]</c>: trains a
/// model (full fine-tuning or LoRA) and writes a Hugging Face folder (merged weights, tokenizer files) to --output,
/// plus the PEFT adapter in --output/adapter under LoRA. Checkpoints go to --output/checkpoints; running the same
/// command again resumes from the newest one. Ctrl+C stops after writing a checkpoint.
/// </summary>
internal static class TrainCommand
{
    /// <summary>What an objective factory can use.</summary>
    internal sealed record Setup(ParseResult Parse, DecoderOnlyCausalLM Model, string ModelDirectory, IConversationEncoder? Encoder, int? VocabularySize);

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
    };

    /// <summary>Options that objectives other than sft declare (added to the command).</summary>
    internal static readonly List<Option> ExtraOptions = new();

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder to start from.", Required = true };
        var objective = new Option<string>("--objective") { Description = $"Training objective: {string.Join(", ", Objectives.Select(o => $"{o.Name} ({o.Description})"))}.", DefaultValueFactory = _ => "sft" };
        var data = new Option<string[]>("--data") { Description = "JSONL dataset file(s) (DESIGN.md schema or pre-tokenized prompt_ids/response_ids or ids/mask); several files are mixed by --mix.", Required = true, AllowMultipleArgumentsPerToken = true };
        var mix = new Option<string?>("--mix") { Description = "Mixing ratio of the --data files, e.g. 1:4 (default: equal)." };
        var field = new Option<string>("--response-field") { Description = "Response to train on: response, safe_response or harmful_response.", DefaultValueFactory = _ => "response" };
        var output = new Option<string>("--output") { Description = "Output folder (model, adapter/, checkpoints/).", Required = true };
        var steps = new Option<int?>("--steps") { Description = "Optimiser steps (default: one epoch over the data)." };
        var epochs = new Option<double?>("--epochs") { Description = "Epochs over the first --data file, converted to steps (ignored with --steps)." };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per micro-batch.", DefaultValueFactory = _ => 8 };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimiser step.", DefaultValueFactory = _ => 1 };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default 2e-5 full, 1e-4 LoRA)." };
        var warmup = new Option<int>("--warmup") { Description = "Linear warmup steps.", DefaultValueFactory = _ => 0 };
        var wd = new Option<double>("--weight-decay") { Description = "AdamW weight decay on matrices (never norms or biases).", DefaultValueFactory = _ => 0.0 };
        var beta1 = new Option<double>("--beta1") { Description = "AdamW beta1 (Qi et al. use 0.5 for the constrained objective).", DefaultValueFactory = _ => 0.9 };
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
            var files = parse.GetValue(data)!;
            var weights = ParseMix(parse.GetValue(mix), files.Length);
            bool useLora = parse.GetValue(lora);

            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var dt = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            using var student = CausalLanguageModel.FromPretrained(modelDir, dev, dt);
            ChatConversationEncoder? encoder = File.Exists(Path.Combine(modelDir, "tokenizer.json")) ? ChatConversationEncoder.FromPretrained(modelDir) : null;
            var builder = new SftExampleBuilder(encoder, parse.GetValue(field)!);
            var sources = files.Select((f, i) => new DataSource(Path.GetFileNameWithoutExtension(f), JsonlDatasetReader.ReadFile(f), builder, weights[i])).ToArray();
            if (sources.Select(s => s.Name).Distinct().Count() != sources.Length)
                sources = sources.Select((s, i) => s with { Name = $"{s.Name}#{i}" }).ToArray();
            var trainingData = new TrainingData(sources, parse.GetValue(seed));

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
            int stepCount = parse.GetValue(steps) ?? (int)Math.Max(1, Math.Ceiling((parse.GetValue(epochs) ?? 1.0) * sources[0].Records.Count * weights.Sum() / weights[0] / (micro * ga)));
            double clipNorm = parse.GetValue(clip);
            var options = new TrainerOptions
            {
                MaxSteps = stepCount, MicroBatchSize = micro, GradientAccumulationSteps = ga,
                LearningRate = parse.GetValue(lr) ?? (useLora ? 1e-4 : 2e-5), WarmupSteps = parse.GetValue(warmup),
                WeightDecay = parse.GetValue(wd), Beta1 = parse.GetValue(beta1), MaxGradNorm = clipNorm > 0 ? clipNorm : null,
                MaxSequenceLength = parse.GetValue(maxLen), Seed = parse.GetValue(seed),
                CheckpointDirectory = Path.Combine(outDir, "checkpoints"), CheckpointEvery = parse.GetValue(ckEvery),
            };
            var (trainingObjective, teachers) = entry.Create(new Setup(parse, student, modelDir, encoder, encoder?.VocabSize));
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

    private static double[] ParseMix(string? mix, int files)
    {
        if (mix is null) return Enumerable.Repeat(1.0, files).ToArray();
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
}
