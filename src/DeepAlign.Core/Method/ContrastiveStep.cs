using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// The result of one contrastive scoring step: scores, the alpha used per row and, when the schedule needed it, U_j.
/// Owns its tensors.
/// </summary>
public sealed class ContrastiveStep : IDisposable
{
    internal ContrastiveStep(Tensor scores, Tensor alpha, Tensor? incompleteness)
    {
        Scores = scores; Alpha = alpha; Incompleteness = incompleteness;
    }

    /// <summary>Contrastive scores s_j, <c>[N, V]</c> float32, -inf outside P_j; feed them to temperature/top-k/top-p.</summary>
    public Tensor Scores { get; }

    /// <summary>alpha_j per row, <c>[N]</c> float32.</summary>
    public Tensor Alpha { get; }

    /// <summary>U_j per row, <c>[N]</c>, when the schedule used it; otherwise null.</summary>
    public Tensor? Incompleteness { get; }

    /// <summary>Disposes the tensors.</summary>
    public void Dispose()
    {
        Scores.Dispose(); Alpha.Dispose(); Incompleteness?.Dispose();
    }
}
