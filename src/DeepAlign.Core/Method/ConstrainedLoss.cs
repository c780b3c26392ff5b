using DeepAlign.Runtime;
using DeepAlign.Method.Baselines;
using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// Qi et al.'s token-wise constrained objective (their Eq. 3; docs/method.md section 4):
/// loss_j = (2 / beta_j) softplus(beta_j (log pi_ref(y_j) - log pi_theta(y_j))), whose gradient is
/// -2 sigmoid(beta_j (log pi_ref - log pi_theta)) grad log pi_theta(y_j).
/// </summary>
public static class ConstrainedLoss
{
    /// <summary>The per-position loss value (differentiable in the policy; the reference is detached).</summary>
    /// <param name="policyTokenLogProbs">log pi_theta(y_j), <c>[N]</c> (see <see cref="PositionStatistics.TokenLogProbs"/>).</param>
    /// <param name="referenceTokenLogProbs">log pi_ref(y_j) of the initial aligned model, <c>[N]</c>.</param>
    /// <param name="betas">beta_j, <c>[N]</c>, each &gt; 0 (see <see cref="ConstrainedBetaSchedule.Betas"/>).</param>
    /// <returns><c>[N]</c>.</returns>
    public static Tensor Loss(Tensor policyTokenLogProbs, Tensor referenceTokenLogProbs, Tensor betas)
    {
        ArgumentNullException.ThrowIfNull(policyTokenLogProbs);
        ArgumentNullException.ThrowIfNull(referenceTokenLogProbs);
        ArgumentNullException.ThrowIfNull(betas);
        if (!referenceTokenLogProbs.shape.SequenceEqual(policyTokenLogProbs.shape) || !betas.shape.SequenceEqual(policyTokenLogProbs.shape))
            throw new ArgumentException(
                $"policy [{string.Join(", ", policyTokenLogProbs.shape)}], reference [{string.Join(", ", referenceTokenLogProbs.shape)}] and betas [{string.Join(", ", betas.shape)}] must have the same shape.",
                nameof(betas));
        using var scope = NewDisposeScope();
        var dev = policyTokenLogProbs.device;
        var refLp = PositionStatistics.OnDevice(referenceTokenLogProbs.detach(), dev).to_type(policyTokenLogProbs.dtype);
        var b = PositionStatistics.OnDevice(betas.detach(), dev).to_type(policyTokenLogProbs.dtype);
        if (b.le(Scalars.Zero).any().item<bool>()) throw new ArgumentException("Every beta must be > 0.", nameof(betas));
        var z = b * (refLp - policyTokenLogProbs);
        // softplus(z) * (2.0 / b), where TorchSharp's 2.0 / b is b.reciprocal() * 2.0; explicit Scalars (Runtime/Scalars.cs).
        return (Scalars.Softplus(z) * b.reciprocal().mul(Scalars.TwoDouble)).MoveToOuterDisposeScope();
    }
}
