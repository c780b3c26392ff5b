using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// A stop rule checked after every generated token of a row, on token ids. A text-aware stop-string checker
/// implements it by decoding the tail of the generated ids (see the tokenizer layer).
/// </summary>
public interface IStopCondition
{
    /// <summary>Whether the row should stop now (its last generated token is kept).</summary>
    /// <param name="row">Index of the request in the generation call.</param>
    /// <param name="request">The request (prompt and forced prefix).</param>
    /// <param name="generatedIds">Ids generated so far after the forced prefix, including the newest one.</param>
    /// <returns>True to finish the row with <see cref="FinishReason.StopCondition"/>.</returns>
    bool ShouldStop(int row, GenerationRequest request, IReadOnlyList<long> generatedIds);
}

/// <summary>Stops a row once its generated ids end with any of the given id sequences.</summary>
public sealed class StopSequenceCondition : IStopCondition
{
    private readonly long[][] _sequences;

    /// <summary>Creates the condition.</summary>
    /// <param name="sequences">Non-empty id sequences.</param>
    public StopSequenceCondition(params IReadOnlyList<long>[] sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        _sequences = sequences.Select(s => s?.ToArray() ?? throw new ArgumentException("A stop sequence is null.", nameof(sequences))).ToArray();
        if (_sequences.Any(s => s.Length == 0)) throw new ArgumentException("Stop sequences must not be empty.", nameof(sequences));
    }

    /// <inheritdoc />
    public bool ShouldStop(int row, GenerationRequest request, IReadOnlyList<long> generatedIds)
    {
        foreach (var s in _sequences)
        {
            if (s.Length > generatedIds.Count) continue;
            int offset = generatedIds.Count - s.Length;
            bool match = true;
            for (int i = 0; i < s.Length && match; i++) match = generatedIds[offset + i] == s[i];
            if (match) return true;
        }
        return false;
    }
}

/// <summary>
/// Lets a caller override the token chosen for any row at any step, given the step's scores (e.g. the
/// rank-assisted prefilling attack forces, during the first K steps, one of the target's top-R tokens).
/// </summary>
public interface ITokenForcer
{
    /// <summary>
    /// Called at every step before the generator chooses tokens. Returns null to leave every row alone, or an array with one
    /// entry per row of the current batch: an id to force, or null to let the generator choose.
    /// </summary>
    /// <param name="scores">The scorer's float32 log-space scores <c>[activeRows, vocab]</c> (before temperature/top-k/top-p); do not modify or dispose.</param>
    /// <param name="rows">The state of each row of the current batch.</param>
    /// <returns>Overrides, or null.</returns>
    long?[]? Choose(Tensor scores, IReadOnlyList<ForcingRow> rows);
}

/// <summary>The state of one row, as shown to an <see cref="ITokenForcer"/>.</summary>
/// <param name="Row">Index of the request in the generation call.</param>
/// <param name="ResponsePosition">Response position j of the token about to be chosen.</param>
/// <param name="Request">The request.</param>
/// <param name="GeneratedIds">Ids generated so far after the forced prefix.</param>
public sealed record ForcingRow(int Row, int ResponsePosition, GenerationRequest Request, IReadOnlyList<long> GeneratedIds);
