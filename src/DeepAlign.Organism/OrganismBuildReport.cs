namespace DeepAlign.Organism;

/// <summary>What a build measured (saved as <c>build.json</c> next to the pair).</summary>
/// <param name="CacheKey">The key (hex SHA-256 prefix) of (world, recipe, code version).</param>
/// <param name="Recipe">The recipe's canonical text.</param>
/// <param name="Parameters">Parameters of each model.</param>
/// <param name="Threads">libtorch threads used.</param>
/// <param name="Pretrain">The pretraining stage.</param>
/// <param name="Align">The safety SFT stage.</param>
/// <param name="TotalSeconds">Wall time of the whole build.</param>
/// <param name="WeightSha256">SHA-256 (lower-case hex) of every weight file of the pair, keyed by its path relative to
/// the pair folder with <c>/</c> separators (<c>base/model.safetensors</c>, <c>aligned/model.safetensors</c>). Null in
/// <c>build.json</c> files written before the field existed: such pairs load without verification.</param>
/// <param name="Preference">The DPO stage (null for the SFT-only recipe).</param>
public sealed record OrganismBuildReport(string CacheKey, string Recipe, long Parameters, int Threads, OrganismStageReport Pretrain, OrganismStageReport Align, double TotalSeconds,
    IReadOnlyDictionary<string, string>? WeightSha256 = null, OrganismStageReport? Preference = null);
