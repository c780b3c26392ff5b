namespace DeepAlign.Evaluation;

/// <summary>The dataset of a run (<see cref="RunProvenance"/>).</summary>
/// <param name="Path">The file as given.</param>
/// <param name="Format">Its layout as read (<c>jsonl</c>, <c>advbench</c>, <c>harmbench</c>, <c>csv</c>).</param>
/// <param name="Fingerprint"><c>sha256:</c> and the hex SHA-256 of the file's bytes (<see cref="Data.DatasetFingerprint.OfFile"/>).</param>
/// <param name="Records">Records evaluated (after any prompt limit).</param>
public sealed record DatasetProvenance(string Path, string Format, string Fingerprint, int Records);
