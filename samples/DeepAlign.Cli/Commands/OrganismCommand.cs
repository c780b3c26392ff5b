using System.CommandLine;
using System.Globalization;
using DeepAlign.Evaluation;
using DeepAlign.Organism;
using DeepAlign.Organism.Experiment;
using DeepAlign.Reporting;
using Spectre.Console;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign organism [--world DIR] [--cache DIR] [--output DIR] [--seeds N] [--quick] [--threads N] [--workers N] [--recipe sft|sft+dpo]
/// [--chat-judge DIR [--chat-judge-template harmbench|strongreject] [--chat-judge-cache F]]</c>:
/// the main job (<see cref="OrganismExperiment"/>), with a progress bar per task, the result table and the timings on
/// the console, and <c>DIR/results.md</c> with plots and the JSON results (default DIR: docs).
/// </summary>
internal static class OrganismCommand
{
    public static Command Create()
    {
        var world = new Option<string?>("--world") { Description = "World directory (docs/data-formats.md files); default: the built-in generated world." };
        var cache = new Option<string?>("--cache") { Description = "Cache directory of built pairs (default: $DEEPALIGN_CACHE or ~/.cache/deepalign)." };
        var output = new Option<string>("--output") { Description = "Where results.md and results/ are written.", DefaultValueFactory = _ => "docs" };
        var seeds = new Option<int>("--seeds") { Description = "Number of sampling seeds (the pinned pair stays).", DefaultValueFactory = _ => 1 };
        var quick = new Option<bool>("--quick") { Description = "Fewer prompts and sweep settings (a smoke run)." };
        var threads = new Option<int?>("--threads") { Description = "libtorch threads per evaluation worker (default: the recipe's, 1)." };
        var workers = new Option<int?>("--workers") { Description = "Defenses evaluated at once, one thread each (default: the number of CPU cores)." };
        var recipe = new Option<string>("--recipe") { Description = "How the aligned model is made: sft+dpo (default: safety SFT then DPO) or sft (safety SFT only, for comparison).", DefaultValueFactory = _ => "sft+dpo" };
        var command = new Command("organism", "Build or load the model organism's pinned pair, attack it, apply defenses and write docs/results.md.")
        {
            world, cache, output, seeds, quick, threads, workers, recipe,
        };
        var chatJudge = new ChatJudgeArguments();
        foreach (var o in chatJudge.All) command.Options.Add(o);
        command.SetAction((parse, token) => Task.FromResult(CommandRunner.Run(() =>
        {
            using var chat = chatJudge.Load(parse, TorchSharp.torch.CPU);
            var options = new OrganismExperimentOptions
            {
                AdditionalJudges = chat is null ? [] : [chat.Judge],
                WorldDirectory = parse.GetValue(world),
                CacheDirectory = parse.GetValue(cache) ?? DefaultCache(),
                OutputDirectory = parse.GetValue(output)!,
                Seeds = parse.GetValue(seeds),
                Quick = parse.GetValue(quick),
                Threads = parse.GetValue(threads),
                Workers = parse.GetValue(workers),
                Recipe = new OrganismRecipe { Kind = OrganismRecipe.ParseKind(parse.GetValue(recipe)!) },
                ProfilePlots = ProfilePlots.Renderer,
                EvaluationPlots = EvaluationPlots.Renderer,
            };
            var result = Run(options, AnsiConsole.Console, token);
            string written = OrganismResultsWriter.Write(result);
            PrintTable(AnsiConsole.Console, result.Seen, "seen categories", timings: false);
            PrintTable(AnsiConsole.Console, result.Unseen, "unseen categories", timings: true);
            AnsiConsole.WriteLine();
            AnsiConsole.Write(new Markup($"[green]wrote[/] {Markup.Escape(written)}\n"));
            return result.Seen.Runs.Count > 0 ? ExitCodes.Success : ExitCodes.Failure;
        })));
        return command;
    }

    private static string DefaultCache() =>
        Environment.GetEnvironmentVariable("DEEPALIGN_CACHE") is { Length: > 0 } env ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "deepalign");

    /// <summary>Runs the experiment with one Spectre progress bar per task.</summary>
    internal static OrganismExperimentResult Run(OrganismExperimentOptions options, IAnsiConsole console, CancellationToken token)
    {
        OrganismExperimentResult? result = null;
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                var gate = new object();
                var progress = new ConsoleProgress<OrganismExperimentProgress>(p =>
                {
                    lock (gate)
                    {
                        if (!tasks.TryGetValue(p.Task, out var task)) tasks[p.Task] = task = ctx.AddTask(Markup.Escape(p.Description), maxValue: Math.Max(1, p.MaxValue));
                        task.MaxValue = Math.Max(1, p.MaxValue);
                        task.Value = p.Value;
                        task.Description = Markup.Escape(p.Description);
                    }
                });
                result = OrganismExperiment.Run(options, progress, new ConsoleWarningLogger(console), token);
            });
        return result!;
    }

    private static void PrintTable(IAnsiConsole console, EvaluationReport report, string split, bool timings)
    {
        var run = report.Runs[0];
        var labels = run.Defenses.SelectMany(d => d.Attacks).Select(a => a.Label).Distinct().ToList();
        var table = new Table().Title($"attack success rate, {split}, content judge (keyword judge in brackets)");
        table.AddColumn("defense");
        foreach (var l in labels) table.AddColumn(l);
        table.AddColumn("benign acc.");
        foreach (var d in run.Defenses)
        {
            var cells = new List<string> { d.Defense };
            foreach (var l in labels)
            {
                var a = d.Attacks.FirstOrDefault(x => x.Label == l);
                cells.Add(a is null ? "–" : string.Create(CultureInfo.InvariantCulture,
                    $"{a.Judges[0].Rate * 100:0.0}% ({(a.Judges.Count > 1 ? a.Judges[1].Rate * 100 : double.NaN):0.0}%)"));
            }
            cells.Add(d.Utility is { } u ? string.Create(CultureInfo.InvariantCulture, $"{u.BenignAccuracy.Rate * 100:0.0}%") : "–");
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        console.Write(table);
        if (!timings) return;
        var timingTable = new Table().Title("timings");
        timingTable.AddColumn("stage");
        timingTable.AddColumn(new TableColumn("seconds").RightAligned());
        foreach (var st in report.Stages) timingTable.AddRow(Markup.Escape(st.Name), st.Seconds.ToString("0.0", CultureInfo.InvariantCulture));
        console.Write(timingTable);
    }

    private sealed class ConsoleProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
