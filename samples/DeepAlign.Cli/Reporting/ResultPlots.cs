using DeepAlign.Evaluation;

namespace DeepAlign.Cli.Reporting;

/// <summary>Plots of an <see cref="EvaluationReport"/> (ScottPlot, PNG): prefilling ASR by K, and ASR by attack.</summary>
internal static class ResultPlots
{
    /// <summary>Writes the plots into <paramref name="directory"/>; returns the file names written.</summary>
    public static IReadOnlyList<string> Write(EvaluationReport report, string directory, string judge = "content")
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        if (report.Runs.Count == 0) return written;
        var run = report.Runs[0];
        var defenses = run.Defenses.Where(d => d.Attacks.Count > 0).ToList();

        var prefill = defenses.Where(d => d.Attacks.Any(a => a.Attack == "prefill")).ToList();
        if (prefill.Count > 0)
        {
            var plot = new ScottPlot.Plot();
            foreach (var d in prefill)
            {
                var points = d.Attacks.Where(a => a.Attack == "prefill").Select(a => (K: a.Parameters["k"], Rate: a.Judges.First(j => j.Judge == judge))).OrderBy(p => p.K).ToList();
                double[] xs = points.Select(p => p.K).ToArray();
                double[] ys = points.Select(p => p.Rate.Rate * 100).ToArray();
                var line = plot.Add.Scatter(xs, ys);
                line.LegendText = d.Defense;
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
            string file = "prefill_asr.png";
            plot.SavePng(Path.Combine(directory, file), 720, 440);
            written.Add(file);
        }

        var labels = defenses.SelectMany(d => d.Attacks).Select(a => a.Label).Distinct().ToList();
        if (labels.Count > 0 && defenses.Count > 0)
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
            plot.Axes.Bottom.SetTicks(Enumerable.Range(0, labels.Count).Select(i => (double)i).ToArray(), labels.Select(Short).ToArray());
            plot.Title($"Attack success by attack ({judge} judge; bars: ±half the 95% interval)");
            plot.YLabel("attack success rate (%)");
            plot.Axes.SetLimits(-0.6, labels.Count - 0.4, 0, 105);
            plot.ShowLegend();
            string file = "asr_by_attack.png";
            plot.SavePng(Path.Combine(directory, file), 900, 480);
            written.Add(file);
        }
        return written;
    }

    private static string Short(string label) =>
        label.StartsWith("prefill K=", StringComparison.Ordinal) ? "prefill " + label["prefill K=".Length..]
        : label.StartsWith("rank-assisted", StringComparison.Ordinal) ? "rank-assisted"
        : label == "decoding sweep" ? "sweep" : label;
}
