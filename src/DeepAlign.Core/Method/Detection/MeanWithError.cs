namespace DeepAlign.Method.Detection;

/// <summary>A mean with its standard error across sequences (NaN when fewer than two sequences contribute).</summary>
/// <param name="Mean">The mean.</param>
/// <param name="StdErr">Sample standard deviation / sqrt(n), or NaN for n &lt; 2.</param>
public readonly record struct MeanWithError(double Mean, double StdErr);
