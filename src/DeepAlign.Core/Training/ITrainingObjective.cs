using DeepAlign.Models;
using DeepAlign.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// A training loss, pluggable into <see cref="Trainer"/>. The trainer calls <see cref="CountTokens"/> on every
/// micro-batch of an optimiser step first (no forward pass), sums the counts per normalisation group, then calls
/// <see cref="Compute"/> on each micro-batch with those totals and back-propagates the returned loss.
/// </summary>
/// <remarks>
/// Token-weighted means (METHOD.md section 0): "mean over tokens" is the sum over every target token of the
/// accumulated batch divided by their count. An objective therefore returns, per micro-batch, its share
/// <c>sum over this micro-batch's tokens / total tokens of the accumulated batch</c> (see
/// <see cref="ObjectiveContext.Normalize"/>); the shares add up to the exact accumulated-batch mean, whatever the
/// split into micro-batches. Terms with different token sets (e.g. harmful targets and benign anchors) use
/// different normalisation groups. A group may count other units than tokens: <see cref="DpoObjective"/>'s counts
/// preference pairs (its loss is a mean over pairs).
/// </remarks>
public interface ITrainingObjective
{
    /// <summary>Short name used in logs and on the command line (e.g. <c>sft</c>).</summary>
    string Name { get; }

    /// <summary>Names of the frozen models this objective needs in <see cref="ObjectiveContext.Teachers"/> (e.g. <c>aligned</c>, <c>base</c>).</summary>
    IReadOnlyList<string> RequiredTeachers { get; }

    /// <summary>The denominators of this micro-batch: target-token counts per normalisation group, from masks only.</summary>
    /// <param name="batch">The micro-batch.</param>
    TokenCounts CountTokens(TrainingBatch batch);

    /// <summary>
    /// Computes this micro-batch's share of the loss. The returned <see cref="ObjectiveOutput.Loss"/> must be a
    /// scalar with a graph to the student's trainable parameters (the trainer calls <c>backward()</c> on it).
    /// </summary>
    /// <param name="batch">The micro-batch.</param>
    /// <param name="context">Models, accumulated-batch token totals, step and a deterministic random source.</param>
    ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context);
}

/// <summary>Target-token counts per normalisation group (e.g. <c>target</c>, or <c>harmful</c> and <c>benign</c>).</summary>
public sealed class TokenCounts
{
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);

    /// <summary>The default group name used by single-group objectives.</summary>
    public const string DefaultGroup = "target";

    /// <summary>Creates an empty set of counts.</summary>
    public TokenCounts() { }

    /// <summary>Creates counts with one group.</summary>
    /// <param name="group">Group name.</param>
    /// <param name="count">Number of target tokens.</param>
    public TokenCounts(string group, long count) => Add(group, count);

    /// <summary>The groups and their counts.</summary>
    public IReadOnlyDictionary<string, long> Groups => _counts;

    /// <summary>Count for <paramref name="group"/> (0 when absent).</summary>
    /// <param name="group">Group name.</param>
    public long this[string group] => _counts.TryGetValue(group, out var c) ? c : 0;

    /// <summary>Adds <paramref name="count"/> tokens to <paramref name="group"/>.</summary>
    /// <param name="group">Group name.</param>
    /// <param name="count">Non-negative count.</param>
    public void Add(string group, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _counts[group] = this[group] + count;
    }

    /// <summary>Adds every group of <paramref name="other"/>.</summary>
    /// <param name="other">Counts to add.</param>
    public void Add(TokenCounts other)
    {
        foreach (var (g, c) in other._counts) Add(g, c);
    }

    /// <summary>Sum over groups.</summary>
    public long Total => _counts.Values.Sum();
}

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

/// <summary>An objective's result for one micro-batch.</summary>
public sealed class ObjectiveOutput
{
    /// <summary>Scalar loss share (already normalised by the accumulated-batch totals), with a graph to the trainable parameters.</summary>
    public required Tensor Loss { get; init; }

    /// <summary>
    /// Named terms for logging, each normalised the same way as the loss (so summing them over micro-batches gives the
    /// step's value); detached scalars. Unweighted values are conventional (e.g. <c>ce</c>, <c>kl</c>, <c>pen</c>).
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> Terms { get; init; } = new Dictionary<string, Tensor>();
}
