using static TorchSharp.torch;

namespace DeepAlign.Generation;

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
