namespace DeepAlign.Method.Detection;

/// <summary>Progress of a profiling run, reported after every batch.</summary>
/// <param name="Sequences">Sequences profiled so far.</param>
/// <param name="Tokens">Response positions profiled so far.</param>
/// <param name="Batches">Batches completed.</param>
public readonly record struct ProfileProgress(int Sequences, long Tokens, int Batches);
