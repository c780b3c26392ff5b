namespace DeepAlign.Generation;

/// <summary>The outcome of one text-level request.</summary>
/// <param name="Index">Index of the request in the call.</param>
/// <param name="Text">The generated continuation after the forced prefix, cut before the first stop string.</param>
/// <param name="StopString">The stop string that ended the text, or null.</param>
/// <param name="Sequence">The id-level result (prompt, prefix and generated ids, finish reason).</param>
public sealed record TextGenerationResult(int Index, string Text, string? StopString, GeneratedSequence Sequence)
{
    /// <summary>Why the row stopped (a stop string gives <see cref="Generation.FinishReason.StopCondition"/>).</summary>
    public FinishReason FinishReason => Sequence.FinishReason;
}
