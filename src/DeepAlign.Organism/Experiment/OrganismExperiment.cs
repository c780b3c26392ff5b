using System.Diagnostics;
using System.Globalization;
using DeepAlign.Evaluation;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Method.Detection;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace DeepAlign.Organism.Experiment;

/// <summary>
/// The main job (docs/organism.md): builds or loads the pinned organism pair, profiles it, checks the pipeline
/// invariants, trains (or loads) the retrained defenses, evaluates every defense under every attack for each seed,
/// and returns the measurements; <see cref="OrganismResultsWriter"/> turns them into <c>results.md</c>.
/// </summary>
public static class OrganismExperiment
{
    /// <summary>Runs the experiment.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="progress">Progress per task (reported from worker threads during the evaluation).</param>
    /// <param name="logger">Warnings (e.g. a corrupt cache entry rebuilt); default none.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <exception cref="ArgumentException">An option is invalid, or the world has no judge spec.</exception>
    public static OrganismExperimentResult Run(OrganismExperimentOptions options, IProgress<OrganismExperimentProgress>? progress = null,
        ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        var s = (options ?? throw new ArgumentNullException(nameof(options))).Validate();
        var recipe = (s.Recipe ?? new OrganismRecipe()).Validate();
        var evalOptions = (s.Evaluation ?? (s.Quick ? OrganismExperimentOptions.QuickEvaluation : OrganismExperimentOptions.FullEvaluation)).Validate();
        var stages = new List<StageTiming>();
        var total = Stopwatch.StartNew();
        var clock = Stopwatch.StartNew();
        void Stage(string name) { stages.Add(new StageTiming(name, clock.Elapsed.TotalSeconds)); clock.Restart(); }
        void Report(string task, string description, double value, double max) => progress?.Report(new(task, description, value, max));

        var world = s.WorldDirectory is null ? OrganismWorld.Generate(s.WorldOptions) : WorldFiles.Read(s.WorldDirectory);
        var judge = world.Judge ?? throw new ArgumentException($"{s.WorldDirectory}: the world has no judge.json, which the exact content judge needs.", nameof(options));
        Stage("world");

        Report("pair", "pair: looking in the cache", 0, 100);
        int dpoSteps = recipe.Kind == OrganismRecipeKind.SftDpo ? recipe.DpoSteps : 0;
        long steps = recipe.PretrainSteps + recipe.AlignSteps + dpoSteps;
        var buildProgress = new ActionProgress<OrganismBuildProgress>(p =>
        {
            if (p.TotalSteps <= 0) return;
            double offset = p.Stage switch
            {
                OrganismBuildStage.Align => 100.0 * recipe.PretrainSteps / steps,
                OrganismBuildStage.Preference => 100.0 * (recipe.PretrainSteps + recipe.AlignSteps) / steps,
                _ => 0,
            };
            double share = 100.0 * p.TotalSteps / steps;
            string stage = p.Stage switch { OrganismBuildStage.Pretrain => "pretrain base", OrganismBuildStage.Align => "safety SFT", _ => "DPO" };
            Report("pair", string.Create(CultureInfo.InvariantCulture,
                $"pair: {stage} {p.Step}/{p.TotalSteps} loss {p.Loss:0.000} {p.TokensPerSecond:0} tok/s"),
                offset + share * p.Step / p.TotalSteps, 100);
        });
        var pair = OrganismBuilder.LoadOrBuild(world, s.CacheDirectory, recipe, buildProgress, logger ?? NullLogger.Instance, cancellationToken);
        Report("pair", pair.FromCache ? $"pair: cached ({pair.CacheKey})" : $"pair: built ({pair.CacheKey})", 100, 100);
        Stage(pair.FromCache ? "load pair (cached)" : "build pair");

        int previousThreads = torch.get_num_threads();
        torch.set_num_threads(s.Threads ?? recipe.Threads);
        try
        {
            var text = ConversationEncoder.FromPretrained(pair.AlignedDirectory);
            using var baseModel = CausalLanguageModel.FromPretrained(pair.BaseDirectory, torch.CPU);
            using var aligned = CausalLanguageModel.FromPretrained(pair.AlignedDirectory, torch.CPU);
            Stage("load models");

            int profiled = Math.Min(s.Quick ? 64 : 160, world.HeldoutHarmful.Count);
            var profileOptions = new ProfileOptions { BatchSize = 32 }.Validate();
            Report("profile", "profile", 0, 1);
            var pairProfile = OrganismProfiles.HarmfulReferences(baseModel, aligned, text, world.HeldoutHarmful, profiled, profileOptions, cancellationToken);
            Report("profile", "profile", 1, 1);
            Stage("profile");

            int invariantTokens = Math.Min(evalOptions.MaxNewTokens, 32);
            var invariant = PipelineInvariants.CheckAlphaZero(baseModel, aligned, text, world.HeldoutHarmful, 10, s.Quick ? 32 : 64, invariantTokens);
            Stage("invariant check");

            var judges = new[]
            {
                new NamedJudge("content", new ExactContentJudge(judge)),
                new NamedJudge("keyword", new KeywordRefusalJudge(new KeywordRefusalJudgeOptions { IgnoreCase = true })),
            };
            // The test splits add the configured judges (e.g. an LLM judge); validation keeps the two cheap ones.
            NamedJudge[] testJudges = [.. judges, .. s.AdditionalJudges];

            // The shared learning-rate grid: every retrained defense at every grid value, same steps, batch, schedule and
            // data (the align split's seen categories minus the validation split).
            var splits = DefenseSplits.Create(world, s);
            // Each grid point trains independently at one intra-op thread (the build's thread count), so the points run on
            // the evaluation's workers at once and give the same weights, bit for bit, as one after another.
            var gridJobs = RetrainedDefenses.Variants.SelectMany(v => s.LearningRateGrid.Select(lr => (v.Name, v.Objective, Lr: lr))).ToList();
            var gridTrained = new TrainedDefense[gridJobs.Count];
            WorkerThreads.Run(gridJobs.Count, s.WorkerCount, "grid training", (i, token) =>
            {
                var (name, objective, lr) = gridJobs[i];
                string label = string.Create(CultureInfo.InvariantCulture, $"{name}@{lr:0.#####e0}");
                string task = $"train {label}";
                Report(task, task, 0, 1);
                var t = RetrainedDefenses.LoadOrTrain(pair, text, baseModel, aligned, name, objective, s.Training with { LearningRate = lr },
                    splits.TrainHarmful, splits.TrainBenign, splits.Canonical,
                    (step, totalSteps, loss) => Report(task, string.Create(CultureInfo.InvariantCulture, $"train {label}: {step}/{totalSteps} loss {loss:0.000}"), step, totalSteps),
                    token);
                Report(task, $"train {label}: {(t.FromCache ? "cached" : "trained")}", 1, 1);
                gridTrained[i] = t;
            }, cancellationToken);
            var gridModels = gridJobs.Select((j, i) => (j.Name, j.Lr, Model: gridTrained[i])).ToList();
            Stage(gridModels.All(g => g.Model.FromCache) ? $"load {gridModels.Count} grid defenses (cached)" : $"train {gridModels.Count} grid defenses ({Math.Min(s.WorkerCount, gridModels.Count)} workers)");

            // Validation: the aligned model and every grid point on the validation split (never the test prompts).
            var validationOptions = evalOptions with
            {
                PlainRequests = false, PrefillLengths = LearningRateSelection.ValidationPrefillLengths, RankAssisted = false, DecodingSweep = false,
                MaxHarmfulPrompts = null, MaxBenignPrompts = null,
            };
            var validator = new SafetyEvaluator(text, splits.ValidationHarmful, splits.ValidationBenign, judges, validationOptions, null);
            var validationDefenses = new List<IDefense> { ScorerDefense.ForModel("aligned", aligned, text.VocabSize) };
            foreach (var g in gridModels)
                validationDefenses.Add(ScorerDefense.ForModel(string.Create(CultureInfo.InvariantCulture, $"{g.Name}@{g.Lr:R}"),
                    CausalLanguageModel.FromPretrained(g.Model.Directory, torch.CPU), text.VocabSize, ownsModel: true));
            IReadOnlyList<DefenseEvaluation> validation;
            try
            {
                validation = Evaluate(validator, validationDefenses, null, s.WorkerCount, -1, progress, cancellationToken);
            }
            finally
            {
                foreach (var d in validationDefenses) d.Dispose();
            }
            double MeanPrefill(DefenseEvaluation e) => e.Attacks.Where(a => a.Attack == "prefill").Average(a => a.Judges[0].Rate);
            double alignedValidationAccuracy = validation[0].Utility!.BenignAccuracy.Rate;
            var grid = new List<LearningRateGridPoint>();
            var trained = new List<TrainedDefense>();
            foreach (var (name, _) in RetrainedDefenses.Variants)
            {
                var points = gridModels.Select((g, i) => (g, e: validation[i + 1])).Where(x => x.g.Name == name)
                    .Select(x => new LearningRateGridPoint(name, x.g.Lr, MeanPrefill(x.e), x.e.Utility!.BenignAccuracy.Rate, false, false, x.g.Model.Report, x.g.Model.Directory))
                    .ToList();
                var selected = LearningRateSelection.Select(points, alignedValidationAccuracy);
                grid.AddRange(selected);
                var best = selected.Single(p => p.Selected);
                trained.Add(gridModels.Single(g => g.Name == name && g.Lr == best.LearningRate).Model);
            }
            Stage("validate grid");

            var tcDir = trained.First(t => t.Report.Name == "targeted-completion").Directory;
            ProfileAggregates tcProfile;
            using (var tcModel = CausalLanguageModel.FromPretrained(tcDir, torch.CPU))
                tcProfile = OrganismProfiles.HarmfulReferences(baseModel, tcModel, text, world.HeldoutHarmful, profiled, profileOptions, cancellationToken);
            Stage("profile targeted completion");

            string expert = trained.First(t => t.Report.Name == "qi-augmentation").Directory;
            var splitRuns = new Dictionary<string, List<SeedRun>>(StringComparer.Ordinal) { ["seen"] = [], ["unseen"] = [] };
            for (int seed = 0; seed < s.Seeds; seed++)
            {
                var seedOptions = evalOptions with { Seed = evalOptions.Seed + seed };
                var groups = new List<SplitEvaluation>();
                try
                {
                    foreach (var (split, harmfulTest, benignTest) in new[] { ("seen", splits.TestSeenHarmful, splits.TestSeenBenign), ("unseen", splits.TestUnseenHarmful, splits.TestUnseenBenign) })
                    {
                        // The base model is a reference row (claims 1-2), not a defense: plain requests and utility only.
                        var baseEvaluator = new SafetyEvaluator(text, harmfulTest, benignTest, testJudges,
                            seedOptions with { PrefillLengths = [], RankAssisted = false, DecodingSweep = false }, null);
                        groups.Add(new SplitEvaluation(split, new SafetyEvaluator(text, harmfulTest, benignTest, testJudges, seedOptions, baseModel), baseEvaluator,
                            ScorerDefense.ForModel("base (reference)", baseModel, text.VocabSize),
                            DefenseRoster.Create(baseModel, aligned, text, trained.Select(t => (t.Report.Name, t.Directory)).ToList(), expert)));
                    }
                    var evaluated = EvaluateSplits(groups, s.WorkerCount, seed, progress, cancellationToken);
                    for (int g = 0; g < groups.Count; g++)
                        splitRuns[groups[g].Split].Add(new SeedRun(seedOptions.Seed, evaluated[g]));
                    Stage($"evaluate base + {groups[0].Defenses.Count} defenses, seen and unseen, seed {seed} ({s.WorkerCount} workers)");
                }
                finally
                {
                    foreach (var g in groups) g.Dispose();
                }
            }

            var metadata = new Dictionary<string, string>
            {
                ["world"] = s.WorldDirectory ?? $"built-in generator (seed {world.Options?.Seed})",
                ["cache_key"] = pair.CacheKey,
                ["pair_from_cache"] = pair.FromCache ? "true" : "false",
                ["parameters"] = pair.Report.Parameters.ToString(CultureInfo.InvariantCulture),
                ["recipe"] = pair.Report.Recipe.TrimEnd().Replace('\n', ';'),
                ["threads"] = (s.Threads ?? recipe.Threads).ToString(CultureInfo.InvariantCulture),
                ["workers"] = s.WorkerCount.ToString(CultureInfo.InvariantCulture),
                ["max_new_tokens"] = evalOptions.MaxNewTokens.ToString(CultureInfo.InvariantCulture),
                ["quick"] = s.Quick ? "true" : "false",
                ["recipe_kind"] = OrganismRecipe.KindName(recipe.Kind),
                ["unseen_harm_categories"] = string.Join(',', s.UnseenHarmCategories),
                ["unseen_benign_categories"] = string.Join(',', s.UnseenBenignCategories),
                ["learning_rate_grid"] = string.Join(',', s.LearningRateGrid.Select(lr => lr.ToString("R", CultureInfo.InvariantCulture))),
            };
            if (s.AdditionalJudges.Count > 0) metadata["additional_judges"] = string.Join(',', s.AdditionalJudges.Select(j => j.Name));
            stages.Add(new StageTiming("total", total.Elapsed.TotalSeconds));
            var seen = EvaluationReport.Create(splitRuns["seen"], new Dictionary<string, string>(metadata) { ["split"] = "seen" }, stages);
            var unseen = EvaluationReport.Create(splitRuns["unseen"], new Dictionary<string, string>(metadata) { ["split"] = "unseen" }, stages);
            return new OrganismExperimentResult(seen, unseen, world, pair, pairProfile, tcProfile, profileOptions, profiled, invariant, invariantTokens, trained, grid,
                alignedValidationAccuracy, splits.TrainHarmful.Count, splits.TrainBenign.Count, splits.ValidationHarmful.Count, splits.ValidationBenign.Count, s);
        }
        finally
        {
            torch.set_num_threads(previousThreads);
        }
    }

    /// <summary>Evaluates defenses on <paramref name="workers"/> threads, reporting each defense as its own task.</summary>
    private static IReadOnlyList<DefenseEvaluation> Evaluate(SafetyEvaluator evaluator, IReadOnlyList<IDefense> defenses, string? agreementWith,
        int workers, int seed, IProgress<OrganismExperimentProgress>? progress, CancellationToken token)
    {
        foreach (var d in defenses) progress?.Report(new($"{d.Name} (seed {seed})", $"{d.Name} (seed {seed}): waiting", 0, 1));
        var adapter = progress is null ? null : new ActionProgress<EvaluationProgress>(p =>
            progress.Report(new($"{p.Defense} (seed {seed})", $"{p.Defense} (seed {seed}): {p.Stage}", p.Done, p.Total)));
        return evaluator.EvaluateAll(defenses, agreementWith, workers, adapter, token);
    }

    /// <summary>One split's evaluators and defenses for one seed (the defenses are the split's own instances: a
    /// defense keeps caches, so one instance never runs on two workers at once).</summary>
    private sealed record SplitEvaluation(string Split, SafetyEvaluator Evaluator, SafetyEvaluator BaseEvaluator, IDefense BaseDefense,
        IReadOnlyList<IDefense> Defenses) : IDisposable
    {
        public void Dispose()
        {
            BaseDefense.Dispose();
            foreach (var d in Defenses) d.Dispose();
        }
    }

    /// <summary>
    /// Evaluates the base reference row and every defense of every split in one pool of <paramref name="workers"/>
    /// threads, longest first (decoding-time defenses run two models per step; the seen split is the larger), so no
    /// worker idles at a split boundary; then fills in each split's agreement with <c>aligned</c>. Every item is
    /// independent and runs at one intra-op thread, so the results equal evaluating the splits one after another.
    /// Returns per split: the base row, then the defenses in roster order.
    /// </summary>
    private static IReadOnlyList<DefenseEvaluation>[] EvaluateSplits(IReadOnlyList<SplitEvaluation> groups, int workers, int seed,
        IProgress<OrganismExperimentProgress>? progress, CancellationToken token)
    {
        static bool TwoModels(IDefense d) => d.Name.StartsWith("cd-", StringComparison.Ordinal) || d.Name == DefenseRoster.SafeDecodingName;
        var jobs = groups.SelectMany((g, gi) => g.Defenses.Select((d, di) => (Group: gi, Index: di, Evaluator: g.Evaluator, Defense: d))
                .Prepend((Group: gi, Index: -1, Evaluator: g.BaseEvaluator, Defense: g.BaseDefense)))
            .OrderByDescending(j => TwoModels(j.Defense)).ThenBy(j => j.Group).ToList();
        string Label(int group, IDefense d) => $"{d.Name} ({groups[group].Split}, seed {seed})";
        foreach (var j in jobs) progress?.Report(new(Label(j.Group, j.Defense), $"{Label(j.Group, j.Defense)}: waiting", 0, 1));
        var results = groups.Select(g => new DefenseEvaluation[g.Defenses.Count + 1]).ToArray();
        WorkerThreads.Run(jobs.Count, workers, "evaluation", (i, cancel) =>
        {
            var j = jobs[i];
            var adapter = progress is null ? null : new ActionProgress<EvaluationProgress>(p =>
                progress.Report(new(Label(j.Group, j.Defense), $"{Label(j.Group, j.Defense)}: {p.Stage}", p.Done, p.Total)));
            results[j.Group][j.Index + 1] = j.Evaluator.Evaluate(j.Defense, null, adapter, cancel);
        }, token);
        return groups.Select((g, gi) => (IReadOnlyList<DefenseEvaluation>)results[gi].Select((r, k) => k == 0 ? r : g.Evaluator.WithAgreement(r, "aligned")).ToArray()).ToArray();
    }
}
