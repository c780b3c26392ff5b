namespace DeepAlign.Method.TargetedCompletion;

/// <summary>What the utility anchor on benign data measures (docs/method.md section 3).</summary>
public enum UtilityAnchor
{
    /// <summary>KL(pi_a || pi_theta) per benign target token: stay where the aligned model was (default; docs/method.md).</summary>
    AlignedKl,

    /// <summary>Cross-entropy of the benign responses y' (the docs/method.md option; needs no aligned forward on benign rows).</summary>
    CrossEntropy,
}
