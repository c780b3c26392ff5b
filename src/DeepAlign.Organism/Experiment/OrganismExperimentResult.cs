using DeepAlign.Evaluation;
using DeepAlign.Method.Detection;

namespace DeepAlign.Organism.Experiment;

/// <summary>Everything the organism experiment measured, ready for <see cref="OrganismResultsWriter"/>.</summary>
/// <param name="Report">The evaluation report (runs per seed, metadata, stage timings).</param>
/// <param name="World">The world.</param>
/// <param name="Pair">The pinned pair.</param>
/// <param name="PairProfile">Profile of the aligned model against the base (claim 1).</param>
/// <param name="TargetedCompletionProfile">Profile of the targeted-completion model against the base (claim 5).</param>
/// <param name="ProfileOptions">The detector settings of both profiles.</param>
/// <param name="ProfiledItems">How many held-out harmful items were profiled.</param>
/// <param name="Invariant">The alpha = 0 invariant check.</param>
/// <param name="InvariantMaxNewTokens">New tokens per row in the invariant check.</param>
/// <param name="Trained">The retrained defenses.</param>
/// <param name="Options">The settings of the run.</param>
public sealed record OrganismExperimentResult(
    EvaluationReport Report, OrganismWorld World, OrganismPair Pair, ProfileAggregates PairProfile, ProfileAggregates TargetedCompletionProfile,
    ProfileOptions ProfileOptions, int ProfiledItems, AlphaZeroInvariantResult Invariant, int InvariantMaxNewTokens,
    IReadOnlyList<TrainedDefense> Trained, OrganismExperimentOptions Options);
