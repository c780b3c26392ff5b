using static TorchSharp.torch;

namespace DeepAlign.Method;

/// <summary>
/// A schedule for the contrast strength alpha_j of contrastive decoding (docs/method.md section 2), evaluated per row
/// at each step. Implement it to supply your own schedule; the built-in ones are <see cref="ConstantAlpha"/>,
/// <see cref="LinearRampAlpha"/> and <see cref="IncompletenessDrivenAlpha"/>.
/// </summary>
public interface IAlphaSchedule
{
    /// <summary>
    /// Whether <see cref="Compute"/> reads the incompleteness score U_j. When false, callers may skip computing it
    /// and pass null.
    /// </summary>
    bool UsesIncompleteness { get; }

    /// <summary>alpha_j for each row.</summary>
    /// <param name="positions">Response position j of each row (1-based, counting forced tokens), <c>[N]</c> int64.</param>
    /// <param name="incompleteness">U_j of each row computed from this step's two distributions, <c>[N]</c> float32;
    /// may be null when <see cref="UsesIncompleteness"/> is false.</param>
    /// <returns>alpha_j, <c>[N]</c> float32 on the device of <paramref name="positions"/>.</returns>
    Tensor Compute(Tensor positions, Tensor? incompleteness);
}
