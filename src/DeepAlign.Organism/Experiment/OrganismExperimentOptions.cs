using DeepAlign.Evaluation;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Method.Detection;

namespace DeepAlign.Organism.Experiment;

/// <summary>Settings of <see cref="OrganismExperiment.Run"/> (the main job: <c>deepalign organism</c>).</summary>
public sealed record OrganismExperimentOptions
{
    /// <summary>
    /// Evaluation settings of the full run: the library defaults with 1024 rows per generation call. The organism's model
    /// is tiny, so a decoding step costs little more than its fixed per-step overhead; large batches (the sweep decodes
    /// its 30 settings x 320 prompts in ten of them) cut the number of steps, at about 0.3 GB of KV cache per model.
    /// </summary>
    /// <remarks>At most 128 new tokens (the library default is 64): the v2 world's compliant answers are 86-123 tokens long.</remarks>
    public static SafetyEvaluationOptions FullEvaluation { get; } = new() { BatchSize = 1024, MaxNewTokens = 128 };

    /// <summary>Evaluation settings of the quick run: 80 harmful and 120 benign prompts, a 7-setting sweep.</summary>
    public static SafetyEvaluationOptions QuickEvaluation { get; } = FullEvaluation with
    {
        MaxHarmfulPrompts = 80, MaxBenignPrompts = 120,
        SweepTemperatures = [0.3, 1.0], SweepTopP = [0.3, 1.0], SweepTopK = [5, 50],
    };

    /// <summary>A world folder (see docs/organism-world.md); null: the built-in generated world.</summary>
    public string? WorldDirectory { get; init; }
    /// <summary>Cache folder of built pairs and retrained defenses (required).</summary>
    public required string CacheDirectory { get; init; }
    /// <summary>Where <c>results.md</c> and <c>results/</c> are written (required).</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>Sampling seeds (the pinned pair stays). Default 1.</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>Fewer prompts and sweep settings (<see cref="QuickEvaluation"/>): a smoke run.</summary>
    public bool Quick { get; init; }
    /// <summary>libtorch threads per evaluation worker; null: the recipe's.</summary>
    public int? Threads { get; init; }
    /// <summary>Defenses evaluated at once, one thread each; null: one per CPU core.</summary>
    public int? Workers { get; init; }
    /// <summary>The pair's recipe; null: the pinned default.</summary>
    public OrganismRecipe? Recipe { get; init; }
    /// <summary>Options of the generated world (ignored with <see cref="WorldDirectory"/>); null: defaults.</summary>
    public WorldOptions? WorldOptions { get; init; }
    /// <summary>Evaluation settings; null: <see cref="FullEvaluation"/> or <see cref="QuickEvaluation"/>.</summary>
    public SafetyEvaluationOptions? Evaluation { get; init; }
    /// <summary>The budget shared by the retrained defenses (its <see cref="DefenseTrainingBudget.LearningRate"/> is
    /// replaced by each value of <see cref="LearningRateGrid"/>).</summary>
    public DefenseTrainingBudget Training { get; init; } = new() { Steps = 100 };
    /// <summary>
    /// The shared learning-rate grid: every retrained defense is trained once per value at the same budget, and each
    /// defense's value is picked on the validation split by the pre-declared criterion of
    /// <see cref="LearningRateSelection"/>. Default 2.5e-4, 5e-4, 1e-3.
    /// </summary>
    public IReadOnlyList<double> LearningRateGrid { get; init; } = [2.5e-4, 5e-4, 1e-3];
    /// <summary>Harm categories the defenses never train on ("unseen"; attacks are reported on seen and unseen
    /// categories separately). Default <c>harmful/fraud</c>, <c>harmful/arson</c> (2 of the 6).</summary>
    public IReadOnlyList<string> UnseenHarmCategories { get; init; } = ["harmful/fraud", "harmful/arson"];
    /// <summary>Benign task kinds the defenses never train on (utility is reported on seen and unseen kinds separately).
    /// Default <c>benign/last</c>, <c>benign/describe</c>, <c>benign/cleaning</c> (one list task, one lookup, one procedure).</summary>
    public IReadOnlyList<string> UnseenBenignCategories { get; init; } = ["benign/last", "benign/describe", "benign/cleaning"];
    /// <summary>Harmful align items of seen categories held out of the defenses' training as the validation split. Default 48.</summary>
    public int ValidationHarmful { get; init; } = 48;
    /// <summary>Benign align items of seen kinds held out of the defenses' training as the validation split. Default 96.</summary>
    public int ValidationBenign { get; init; } = 96;
    /// <summary>Draws profile plots into <c>results/profile/</c>; null: no profile plots.</summary>
    public IProfilePlotRenderer? ProfilePlots { get; init; }
    /// <summary>Draws evaluation plots into <c>results/</c>; null: no evaluation plots.</summary>
    public IEvaluationPlotRenderer? EvaluationPlots { get; init; }

    /// <summary>
    /// Judges run on the test splits after the content (primary) and keyword judges, e.g. an LLM judge
    /// (<see cref="DeepAlign.Evaluation.Judges.ChatClientSafetyJudge"/>); each one's rates and its agreement with the content
    /// judge appear in the results. They do not take part in the learning-rate validation. Default none (the default run
    /// has no LLM judge). Names must be distinct and not <c>content</c> or <c>keyword</c>.
    /// </summary>
    public IReadOnlyList<NamedJudge> AdditionalJudges { get; init; } = [];

    /// <summary>The number of evaluation workers used: <see cref="Workers"/>, else the processor count.</summary>
    public int WorkerCount => Workers ?? Environment.ProcessorCount;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public OrganismExperimentOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(CacheDirectory)) throw new ArgumentException("OrganismExperimentOptions.CacheDirectory is required.", nameof(CacheDirectory));
        if (string.IsNullOrWhiteSpace(OutputDirectory)) throw new ArgumentException("OrganismExperimentOptions.OutputDirectory is required.", nameof(OutputDirectory));
        if (Seeds < 1) throw new ArgumentException($"OrganismExperimentOptions.Seeds must be at least 1; got {Seeds}.", nameof(Seeds));
        if (Threads is < 1) throw new ArgumentException($"OrganismExperimentOptions.Threads must be at least 1; got {Threads}.", nameof(Threads));
        if (WorkerCount < 1) throw new ArgumentException($"OrganismExperimentOptions.Workers must be at least 1; got {WorkerCount}.", nameof(Workers));
        Training.Validate();
        if (LearningRateGrid is null || LearningRateGrid.Count == 0 || LearningRateGrid.Any(lr => !(lr > 0) || !double.IsFinite(lr)))
            throw new ArgumentException("OrganismExperimentOptions.LearningRateGrid needs at least one positive learning rate.", nameof(LearningRateGrid));
        if (ValidationHarmful < 1) throw new ArgumentException($"OrganismExperimentOptions.ValidationHarmful must be at least 1; got {ValidationHarmful}.", nameof(ValidationHarmful));
        if (ValidationBenign < 1) throw new ArgumentException($"OrganismExperimentOptions.ValidationBenign must be at least 1; got {ValidationBenign}.", nameof(ValidationBenign));
        if (AdditionalJudges is null) throw new ArgumentException("OrganismExperimentOptions.AdditionalJudges must not be null (use an empty list).", nameof(AdditionalJudges));
        var names = new HashSet<string>(StringComparer.Ordinal) { "content", "keyword" };
        foreach (var j in AdditionalJudges)
            if (j?.Judge is null || string.IsNullOrWhiteSpace(j.Name) || !names.Add(j.Name))
                throw new ArgumentException($"OrganismExperimentOptions.AdditionalJudges: each judge needs a judge and a distinct name other than content and keyword (got '{j?.Name}').", nameof(AdditionalJudges));
        ArgumentNullException.ThrowIfNull(UnseenHarmCategories);
        ArgumentNullException.ThrowIfNull(UnseenBenignCategories);
        return this;
    }
}
