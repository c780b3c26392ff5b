using DeepAlign.Training;
using DeepAlign.Method.Baselines;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>The training objectives of the targeted-completion trainer (docs/method.md sections 3 and 4).</summary>
public enum AlignmentObjective
{
    /// <summary>Targeted completion (<see cref="TargetedCompletionObjective"/>): safety recovery + hybrid teacher + penalty + utility anchor.</summary>
    TargetedCompletion,

    /// <summary>Qi et al.'s safety-recovery augmentation (<see cref="AugmentationObjective"/>, their Eq. 2).</summary>
    Augmentation,

    /// <summary>Qi et al.'s token-wise constrained objective (<see cref="ConstrainedObjective"/>, their Eq. 3).</summary>
    Constrained,

    /// <summary>Plain SFT (<see cref="SftObjective"/>) on (x, r) and the benign pairs.</summary>
    Sft,
}
