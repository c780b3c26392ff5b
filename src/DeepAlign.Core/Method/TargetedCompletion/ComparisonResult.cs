using System.Globalization;
using System.Text;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>The side-by-side results.</summary>
/// <param name="Entries">One per objective, in the order asked.</param>
/// <param name="Reference">The shared metrics of the untouched aligned model on the same validation split.</param>
/// <param name="ValidationHarmful">Harmful records held out.</param>
/// <param name="ValidationBenign">Benign records held out.</param>
public sealed record ComparisonResult(IReadOnlyList<ComparisonEntry> Entries, AlignmentMetricsResult Reference, int ValidationHarmful, int ValidationBenign)
{
    /// <summary>A plain-text table: objective, chosen lr, validation loss, safety CE, benign KL, U early/late.</summary>
    /// <returns>The table.</returns>
    public string ToTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine("objective            lr         val-loss   safety-ce  benign-kl  U-early  U-late");
        string U(double? u) => u is double x ? x.ToString("F3", CultureInfo.InvariantCulture) : "-";
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{"(aligned)",-20} {"-",-10} {"-",-10} {Reference.SafetyCrossEntropy,-10:F4} {Reference.BenignKl,-10:F4} {U(Reference.IncompletenessEarly),-8} {U(Reference.IncompletenessLate)}"));
        foreach (var e in Entries)
        {
            var m = e.Best.Metrics;
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{AlignmentObjectives.Name(e.Objective),-20} {e.Best.LearningRate,-10:G3} {e.Best.ValidationLoss,-10:F4} {m.SafetyCrossEntropy,-10:F4} {m.BenignKl,-10:F4} {U(m.IncompletenessEarly),-8} {U(m.IncompletenessLate)}"));
        }
        return sb.ToString();
    }
}
