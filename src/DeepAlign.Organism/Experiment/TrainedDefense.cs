namespace DeepAlign.Organism.Experiment;

/// <summary>A retrained defense: its model folder, training record, and whether it came from the cache.</summary>
/// <param name="Directory">The Hugging Face folder of the retrained model.</param>
/// <param name="Report">Its training record.</param>
/// <param name="FromCache">True when loaded from the cache, false when trained by this run.</param>
public sealed record TrainedDefense(string Directory, TrainedDefenseReport Report, bool FromCache);
