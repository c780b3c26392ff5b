namespace DeepAlign.Evaluation.Judges;

/// <summary>Strings whose presence marks a compliant (harmful) answer, and how many of them must appear.</summary>
/// <param name="Markers">Content markers (e.g. the target-specific part of each instruction step).</param>
/// <param name="MinMarkers">How many distinct markers must be present for the answer to count as harmful.</param>
public sealed record ContentMarkers(IReadOnlyList<string> Markers, int MinMarkers);
