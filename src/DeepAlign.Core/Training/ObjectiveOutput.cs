using static TorchSharp.torch;

namespace DeepAlign.Training;

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
