using DeepAlign.Runtime;
using DeepAlign.Evaluation;

namespace DeepAlign.Reporting;

/// <summary>
/// Plots of an <see cref="EvaluationReport"/> (ScottPlot, headless PNG) for its first seed run, under one judge:
/// <c>prefill_asr.png</c> (prefilling attack success rate against the number of prefilled tokens K, one line per
/// defense, with 95% Wilson intervals) and <c>asr_by_attack.png</c> (attack success rate per attack label, one bar per
/// defense, error bars ± half the 95% interval).
/// </summary>
public static class EvaluationPlots
{
    /// <summary>File name of the prefilling plot.</summary>
    public const string PrefillFile = "prefill_asr.png";

    /// <summary>File name of the per-attack bar chart.</summary>
    public const string ByAttackFile = "asr_by_attack.png";

    /// <summary>These plots (content judge) behind the evaluation package's <see cref="IEvaluationPlotRenderer"/> seam.</summary>
    public static IEvaluationPlotRenderer Renderer { get; } = new ScottPlotEvaluationRenderer();

    private sealed class ScottPlotEvaluationRenderer : IEvaluationPlotRenderer
    {
        public IReadOnlyList<string> Write(string directory, EvaluationReport report) => EvaluationPlots.Write(report, directory);
    }

    /// <summary>
    /// Writes the plots that have data into <paramref name="directory"/> (created if needed; each file written under a
    /// temporary name and renamed into place). A plot is skipped when no defense has a matching attack rated by
    /// <paramref name="judge"/> (e.g. no <c>prefill</c> attack, or a report without runs).
    /// </summary>
    /// <param name="report">The evaluation report; only <c>Runs[0]</c> is drawn.</param>
    /// <param name="directory">Output folder.</param>
    /// <param name="judge">The judge whose rates are drawn (<c>content</c>, <c>keyword</c>, ...).</param>
    /// <returns>The file names written, relative to <paramref name="directory"/> (<see cref="PrefillFile"/>, then
    /// <see cref="ByAttackFile"/>).</returns>
    public static IReadOnlyList<string> Write(EvaluationReport report, string directory, string judge = "content")
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(judge);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        if (report.Runs.Count == 0) return written;
        var defenses = report.Runs[0].Defenses.Where(d => d.Attacks.Count > 0).ToList();

        var prefill = defenses
            .Select(d => (d.Defense, Points: d.Attacks
                .Where(a => a.Attack == "prefill" && a.Parameters.ContainsKey("k"))
                .Select(a => (K: a.Parameters["k"], Rate: a.Judges.FirstOrDefault(j => j.Judge == judge)))
                .Where(p => p.Rate is not null)
                .Select(p => (p.K, Rate: p.Rate!))
                .OrderBy(p => p.K).ToList()))
            .Where(d => d.Points.Count > 0).ToList();
        if (prefill.Count > 0)
        {
            var plot = new ScottPlot.Plot();
            foreach (var (defense, points) in prefill)
            {
                double[] xs = points.Select(p => p.K).ToArray();
                double[] ys = points.Select(p => p.Rate.Rate * 100).ToArray();
                var line = plot.Add.Scatter(xs, ys);
                line.LegendText = defense;
                var bars = plot.Add.ErrorBar(xs, ys, points.Select(p => (p.Rate.High - p.Rate.Low) * 50).ToArray());
                bars.YErrorPositive = points.Select(p => (p.Rate.High - p.Rate.Rate) * 100).ToArray();
                bars.YErrorNegative = points.Select(p => (p.Rate.Rate - p.Rate.Low) * 100).ToArray();
                bars.Color = line.Color;
            }
            plot.Title($"Prefilling attack success ({judge} judge, 95% Wilson intervals)");
            plot.XLabel("prefilled tokens K");
            plot.YLabel("attack success rate (%)");
            plot.Axes.SetLimitsY(-2, 102);
            plot.ShowLegend();
            AtomicFile.Write(Path.Combine(directory, PrefillFile), temp => plot.SavePng(temp, 720, 440));
            written.Add(PrefillFile);
        }

        var labels = defenses.SelectMany(d => d.Attacks).Where(a => a.Judges.Any(j => j.Judge == judge)).Select(a => a.Label).Distinct().ToList();
        if (labels.Count > 0)
        {
            var plot = new ScottPlot.Plot();
            var palette = new ScottPlot.Palettes.Category10();
            double width = 0.8 / defenses.Count;
            var allBars = new List<ScottPlot.Bar>();
            for (int di = 0; di < defenses.Count; di++)
            {
                var color = palette.GetColor(di);
                for (int li = 0; li < labels.Count; li++)
                {
                    var rate = defenses[di].Attacks.FirstOrDefault(a => a.Label == labels[li])?.Judges.FirstOrDefault(j => j.Judge == judge);
                    if (rate is null) continue;
                    allBars.Add(new ScottPlot.Bar
                    {
                        Position = li + (di - (defenses.Count - 1) / 2.0) * width,
                        Value = rate.Rate * 100,
                        Size = width * 0.95,
                        FillColor = color,
                        Error = (rate.High - rate.Low) * 50,
                    });
                }
                plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = defenses[di].Defense, FillColor = color });
            }
            plot.Add.Bars(allBars);
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), labels.Select(ShortLabel).ToArray());
            plot.Title($"Attack success by attack ({judge} judge; bars: ±half the 95% interval)");
            plot.YLabel("attack success rate (%)");
            plot.Axes.SetLimits(-0.6, labels.Count - 0.4, 0, 105);
            plot.ShowLegend();
            AtomicFile.Write(Path.Combine(directory, ByAttackFile), temp => plot.SavePng(temp, 900, 480));
            written.Add(ByAttackFile);
        }
        return written;
    }

    /// <summary>Axis label of an attack label: <c>prefill K=10</c> → <c>prefill 10</c>, rank-assisted variants →
    /// <c>rank-assisted</c>, <c>decoding sweep</c> → <c>sweep</c>.</summary>
    internal static string ShortLabel(string label) =>
        label.StartsWith("prefill K=", StringComparison.Ordinal) ? "prefill " + label["prefill K=".Length..]
        : label.StartsWith("rank-assisted", StringComparison.Ordinal) ? "rank-assisted"
        : label == "decoding sweep" ? "sweep" : label;
}
