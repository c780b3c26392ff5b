namespace DeepAlign.Method.TargetedCompletion;

/// <summary>Shared validation metrics of a trained model, the same for every objective (see <see cref="AlignmentMetrics"/>).</summary>
/// <param name="SafetyCrossEntropy">Mean cross-entropy of the safe-response tokens r in safety-recovery contexts (K_pre drawn with p0 = 0.5, K_max = 100, from a fixed seed per record).</param>
/// <param name="BenignKl">Mean KL(pi_a || pi_theta) over the benign response tokens (0 for the aligned model itself).</param>
/// <param name="IncompletenessEarly">Mean U_j of (student, base) along the harmful responses h at positions j &lt; LateFrom; null without a base model.</param>
/// <param name="IncompletenessLate">Mean U_j along h at positions j &gt;= LateFrom; null without a base model.</param>
public sealed record AlignmentMetricsResult(double SafetyCrossEntropy, double BenignKl, double? IncompletenessEarly, double? IncompletenessLate);
