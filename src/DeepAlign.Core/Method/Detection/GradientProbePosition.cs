namespace DeepAlign.Method.Detection;

/// <summary>The probe's numbers at one response position.</summary>
/// <param name="Position">j (1-based).</param>
/// <param name="N">Sequences whose response reaches j.</param>
/// <param name="Norm">n_j: mean over those sequences of the gradient's L2 norm, with its standard error.</param>
/// <param name="Share">n_j / sum_s n_s over the probed positions.</param>
public sealed record GradientProbePosition(int Position, int N, MeanWithError Norm, double Share);
