using DeepAlign.Data;

namespace DeepAlign.Training.Data;

/// <summary>A named dataset with its example builder and mixing weight.</summary>
/// <param name="Name">Source tag written on every example (e.g. <c>harmful</c>, <c>benign</c>).</param>
/// <param name="Records">The dataset lines.</param>
/// <param name="Builder">How records become examples.</param>
/// <param name="Weight">Relative share of draws (e.g. 1 and 4 for harmful : benign = 1 : 4).</param>
/// <param name="Shuffle">Reshuffle every epoch (default); false keeps file order, epoch after epoch.</param>
public sealed record DataSource(string Name, IReadOnlyList<DatasetRecord> Records, IExampleBuilder Builder, double Weight = 1.0, bool Shuffle = true);
