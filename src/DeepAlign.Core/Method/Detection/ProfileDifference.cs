namespace DeepAlign.Method.Detection;

/// <summary>Difference of one bucket (or position) between two profiles: after - before, with the standard error of the
/// difference sqrt(se_before^2 + se_after^2) (the two profiles treated as independent samples).</summary>
/// <param name="Label">Bucket label, or the position as text.</param>
/// <param name="NBefore">Sequences in the first profile.</param>
/// <param name="NAfter">Sequences in the second profile.</param>
/// <param name="Kl">Change of mean KL(pi_a || pi_b).</param>
/// <param name="KlReverse">Change of mean KL(pi_b || pi_a).</param>
/// <param name="U">Change of mean U.</param>
/// <param name="BaseFavoredRate">Change of the base-favored rate.</param>
public sealed record ProfileDifference(string Label, int NBefore, int NAfter, MeanWithError Kl, MeanWithError KlReverse, MeanWithError U, MeanWithError BaseFavoredRate);
