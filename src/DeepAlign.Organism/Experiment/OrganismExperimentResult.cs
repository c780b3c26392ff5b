using DeepAlign.Evaluation;
using DeepAlign.Method.Detection;

namespace DeepAlign.Organism.Experiment;

/// <summary>Everything the organism experiment measured, ready for <see cref="OrganismResultsWriter"/>.</summary>
/// <param name="Seen">The evaluation on the held-out prompts of the harm categories (and benign task kinds) the defenses trained on (runs per seed, metadata, stage timings).</param>
/// <param name="Unseen">The same on the held-out categories and kinds no defense trained on.</param>
/// <param name="World">The world.</param>
/// <param name="Pair">The pinned pair.</param>
/// <param name="PairProfile">Profile of the aligned model against the base (claim 1).</param>
/// <param name="TargetedCompletionProfile">Profile of the targeted-completion model against the base (claim 5).</param>
/// <param name="ProfileOptions">The detector settings of both profiles.</param>
/// <param name="ProfiledItems">How many held-out harmful items were profiled.</param>
/// <param name="Invariant">The alpha = 0 invariant check.</param>
/// <param name="InvariantMaxNewTokens">New tokens per row in the invariant check.</param>
/// <param name="Trained">The retrained defenses evaluated (each at its selected grid learning rate).</param>
/// <param name="Grid">Every point of the shared learning-rate grid with its validation numbers.</param>
/// <param name="AlignedValidationBenignAccuracy">The aligned model's benign accuracy on the validation split.</param>
/// <param name="TrainHarmful">Harmful align items the defenses trained on.</param>
/// <param name="TrainBenign">Benign align items the defenses trained on.</param>
/// <param name="ValidationHarmful">Harmful align items of the validation split.</param>
/// <param name="ValidationBenign">Benign align items of the validation split.</param>
/// <param name="Options">The settings of the run.</param>
public sealed record OrganismExperimentResult(
    EvaluationReport Seen, EvaluationReport Unseen, OrganismWorld World, OrganismPair Pair, ProfileAggregates PairProfile, ProfileAggregates TargetedCompletionProfile,
    ProfileOptions ProfileOptions, int ProfiledItems, AlphaZeroInvariantResult Invariant, int InvariantMaxNewTokens,
    IReadOnlyList<TrainedDefense> Trained, IReadOnlyList<LearningRateGridPoint> Grid, double AlignedValidationBenignAccuracy,
    int TrainHarmful, int TrainBenign, int ValidationHarmful, int ValidationBenign, OrganismExperimentOptions Options);
