namespace DeepAlign.Organism.Experiment;

/// <summary>
/// Progress of one task of the organism experiment (the pair build, the profile, one retrained defense, one defense's
/// evaluation): a stable <see cref="Task"/> key, a human-readable <see cref="Description"/>, and how far it is.
/// </summary>
/// <param name="Task">Stable key (e.g. <c>pair</c>, <c>profile</c>, <c>train targeted-completion</c>, <c>aligned (seed 0)</c>).</param>
/// <param name="Description">What it is doing now.</param>
/// <param name="Value">Work done.</param>
/// <param name="MaxValue">Work in all (Value = MaxValue: done).</param>
public readonly record struct OrganismExperimentProgress(string Task, string Description, double Value, double MaxValue);
