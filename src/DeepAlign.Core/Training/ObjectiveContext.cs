using DeepAlign.Models;
using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>What an objective sees besides the batch.</summary>
public sealed class ObjectiveContext
{
    /// <summary>The model being trained (pi_theta).</summary>
    public required ICausalLanguageModel Student { get; init; }

    /// <summary>Frozen models by name (e.g. <c>aligned</c>, <c>base</c>); call them under <c>torch.no_grad()</c>.</summary>
    public required IReadOnlyDictionary<string, ICausalLanguageModel> Teachers { get; init; }

    /// <summary>Target-token totals of the whole accumulated batch (all micro-batches of this optimiser step).</summary>
    public required TokenCounts Totals { get; init; }

    /// <summary>Optimiser step being computed (0-based).</summary>
    public required long Step { get; init; }

    /// <summary>Index of this micro-batch within the step (0-based).</summary>
    public required int MicroBatch { get; init; }

    /// <summary>A random source seeded from (seed, step, micro-batch): deterministic and identical after a resume.</summary>
    public required Random Random { get; init; }

    /// <summary>
    /// Divides a per-micro-batch sum by the accumulated-batch total of <paramref name="group"/>; a group with no
    /// tokens in the whole step contributes zero (never NaN).
    /// </summary>
    /// <param name="sum">Scalar sum over this micro-batch's tokens of the group.</param>
    /// <param name="group">Normalisation group.</param>
    public Tensor Normalize(Tensor sum, string group = TokenCounts.DefaultGroup)
    {
        long total = Totals[group];
        if (total == 0) return sum.mul(Scalars.ZeroDouble);
        using var denominator = ((double)total).ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
        return sum.div(denominator);
    }

    /// <summary>Looks up a teacher, with a clear error when it was not supplied.</summary>
    /// <param name="name">Teacher name.</param>
    public ICausalLanguageModel Teacher(string name) =>
        Teachers.TryGetValue(name, out var m) ? m
            : throw new InvalidOperationException($"The objective needs the frozen model '{name}', which was not given to the trainer (teachers: {string.Join(", ", Teachers.Keys)}).");
}
