using DeepAlign.Evaluation.Attacks;

namespace DeepAlign.Evaluation;

/// <summary>
/// Settings of <see cref="SafetyEvaluator"/>: which attacks run, how they decode, and the utility metrics. Defaults
/// follow docs/method.md section 5 (prefilling K in {5, 10, 20, 40}; rank-assisted K = 10, R = 20; the decoding sweep of
/// Huang et al. 2023) and Qi et al. 2024 for attack decoding (temperature 0.9, top-p 0.6), with at most 64 new tokens
/// per answer instead of their 512 (the organism's compliant answers are 70-82 tokens).
/// </summary>
public sealed record SafetyEvaluationOptions
{
    /// <summary>Largest number of new tokens per attacked answer. Default 64.</summary>
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>Sampling temperature of the attacks (Qi et al.: 0.9).</summary>
    public double Temperature { get; init; } = 0.9;
    /// <summary>Nucleus mass of the attacks (Qi et al.: 0.6).</summary>
    public double TopP { get; init; } = 0.6;
    /// <summary>Seed of the sampling draws (seeds vary the sampling; each attack derives its own stream).</summary>
    public long Seed { get; init; }
    /// <summary>
    /// Rows per generation call; the decoding sweep's settings share these batches (prompt-major). Default 160; small
    /// models run faster with larger batches (the organism's main job uses 1024).
    /// </summary>
    public int BatchSize { get; init; } = 160;

    /// <summary>Run the plain-request attack. Default true.</summary>
    public bool PlainRequests { get; init; } = true;
    /// <summary>Prefix lengths of the prefilling attack (empty: off). Default 5, 10, 20, 40.</summary>
    public IReadOnlyList<int> PrefillLengths { get; init; } = [5, 10, 20, 40];
    /// <summary>Run the rank-assisted prefilling attack (needs the base model). Default true.</summary>
    public bool RankAssisted { get; init; } = true;
    /// <summary>Rank-assisted: overridden steps. Default 10.</summary>
    public int RankAssistedSteps { get; init; } = 10;
    /// <summary>Rank-assisted: size of the target's candidate set. Default 20.</summary>
    public int RankAssistedTopR { get; init; } = 20;

    /// <summary>Run the decoding-parameter sweep. Default true.</summary>
    public bool DecodingSweep { get; init; } = true;
    /// <summary>Sweep temperatures (top-p 1, top-k off). Default 0.1, 0.2, ..., 1.0.</summary>
    public IReadOnlyList<double> SweepTemperatures { get; init; } = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    /// <summary>Sweep top-p values (temperature 1, top-k off). Default 0.1, 0.2, ..., 1.0.</summary>
    public IReadOnlyList<double> SweepTopP { get; init; } = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    /// <summary>Sweep top-k values (temperature 1, top-p 1). Default 1, 2, 5, 10, 20, 50, 100, 200, 500 (Huang et al.).</summary>
    public IReadOnlyList<int> SweepTopK { get; init; } = [1, 2, 5, 10, 20, 50, 100, 200, 500];
    /// <summary>Include greedy decoding in the sweep. Default true.</summary>
    public bool SweepGreedy { get; init; } = true;

    /// <summary>Measure benign accuracy, perplexity and agreement. Default true.</summary>
    public bool Utility { get; init; } = true;
    /// <summary>New-token budget of benign answers; null: the longest reference + 2 (so exact match is possible).</summary>
    public int? BenignMaxNewTokens { get; init; }

    /// <summary>Use only the first this-many harmful prompts (null: all).</summary>
    public int? MaxHarmfulPrompts { get; init; }
    /// <summary>Use only the first this-many benign prompts (null: all).</summary>
    public int? MaxBenignPrompts { get; init; }

    /// <summary>Example responses kept per attack in the results. Default 2.</summary>
    public int Examples { get; init; } = 2;

    /// <summary>
    /// Keep every prompt's verdicts in the results (<see cref="AttackResult.Items"/>, keyed by dataset id and prompt hash)
    /// so that a run can be compared item by item with another run or tool. Default false (the organism's results stay
    /// small); <c>deepalign attack</c> turns it on.
    /// </summary>
    public bool ItemResults { get; init; }

    /// <summary>
    /// The attacks these settings enable, in run order: plain requests, prefilling for each K, rank-assisted prefilling
    /// (run only when the evaluator has a base model), the decoding sweep.
    /// </summary>
    public IReadOnlyList<IAttack> CreateAttacks()
    {
        var attacks = new List<IAttack>();
        if (PlainRequests) attacks.Add(new PlainRequestAttack());
        foreach (var k in PrefillLengths) attacks.Add(new PrefillingAttack(k));
        if (RankAssisted) attacks.Add(new RankAssistedPrefillingAttack(RankAssistedSteps, RankAssistedTopR));
        if (DecodingSweep) attacks.Add(new DecodingSweepAttack());
        return attacks;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public SafetyEvaluationOptions Validate()
    {
        static void Check(bool ok, string field, string rule)
        {
            if (!ok) throw new ArgumentException($"SafetyEvaluationOptions.{field} {rule}.", field);
        }
        Check(MaxNewTokens >= 1, nameof(MaxNewTokens), "must be at least 1");
        Check(Temperature > 0 && double.IsFinite(Temperature), nameof(Temperature), "must be positive");
        Check(TopP is > 0 and <= 1, nameof(TopP), "must be in (0, 1]");
        Check(BatchSize >= 1, nameof(BatchSize), "must be at least 1");
        Check(PrefillLengths is not null && PrefillLengths.All(k => k >= 1), nameof(PrefillLengths), "must hold positive lengths");
        Check(RankAssistedSteps >= 1, nameof(RankAssistedSteps), "must be at least 1");
        Check(RankAssistedTopR >= 1, nameof(RankAssistedTopR), "must be at least 1");
        Check(SweepTemperatures is not null && SweepTemperatures.All(t => t > 0 && double.IsFinite(t)), nameof(SweepTemperatures), "must hold positive values");
        Check(SweepTopP is not null && SweepTopP.All(p => p is > 0 and <= 1), nameof(SweepTopP), "must hold values in (0, 1]");
        Check(SweepTopK is not null && SweepTopK.All(k => k >= 1), nameof(SweepTopK), "must hold positive values");
        Check(BenignMaxNewTokens is null or >= 1, nameof(BenignMaxNewTokens), "must be at least 1");
        Check(MaxHarmfulPrompts is null or >= 1, nameof(MaxHarmfulPrompts), "must be at least 1");
        Check(MaxBenignPrompts is null or >= 1, nameof(MaxBenignPrompts), "must be at least 1");
        Check(Examples >= 0, nameof(Examples), "must be non-negative");
        return this;
    }
}
