using DeepAlign.Runtime;
using DeepAlign.Method.Detection;

namespace DeepAlign.Reporting;

/// <summary>
/// Plots of an incompleteness profile against the response position (ScottPlot, headless): <c>kl</c> (both
/// directions), <c>u</c>, <c>bf_rate</c> and, when the probe ran, <c>grad_norm</c>; each as PNG and SVG, with ± one
/// standard error as error bars. Pass <see cref="Renderer"/> to <see cref="ProfileReportWriter.Write"/> to get them
/// next to <c>profile.json</c> and linked from <c>profile.md</c>.
/// </summary>
public static class ProfilePlots
{
    /// <summary>Width of the images in pixels.</summary>
    public const int Width = 800;

    /// <summary>Height of the images in pixels.</summary>
    public const int Height = 450;

    /// <summary>The renderer for <see cref="ProfileReportWriter.Write"/>: draws <see cref="Write"/>'s plots of the report's
    /// aggregates and gradient probe.</summary>
    public static IProfilePlotRenderer Renderer { get; } = new ScottPlotProfileRenderer();

    /// <summary>Draws the plots into <paramref name="directory"/> (created if needed; each file written atomically).</summary>
    /// <param name="directory">Output folder.</param>
    /// <param name="aggregates">The profile.</param>
    /// <param name="probe">The gradient probe, or null (no <c>grad_norm</c> plot then).</param>
    /// <returns>The full paths written: for each plot its PNG, then its SVG.</returns>
    public static IReadOnlyList<string> Write(string directory, ProfileAggregates aggregates, GradientProbeResult? probe = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(aggregates);
        var written = new List<string>();
        var rows = aggregates.ByPosition;
        double[] x = rows.Select(r => (double)r.Position).ToArray();
        written.AddRange(Save(directory, "kl", "KL divergence by response position", "KL (nats)", x,
            [("KL(aligned || base)", rows.Select(r => r.Kl).ToArray()), ("KL(base || aligned)", rows.Select(r => r.KlReverse).ToArray())]));
        written.AddRange(Save(directory, "u", "Incompleteness U by response position", "U", x,
            [("U", rows.Select(r => r.U).ToArray())]));
        written.AddRange(Save(directory, "bf_rate", "Base-favored rate of the realised tokens", "rate", x,
            [("base-favored rate", rows.Select(r => r.BaseFavoredRate).ToArray())]));
        if (probe is not null && probe.ByPosition.Count > 0)
            written.AddRange(Save(directory, "grad_norm", "Gradient signal probe", "gradient L2 norm",
                probe.ByPosition.Select(p => (double)p.Position).ToArray(), [("mean gradient norm", probe.ByPosition.Select(p => p.Norm).ToArray())]));
        return written;
    }

    private static string[] Save(string directory, string name, string title, string yLabel, double[] x, (string Label, MeanWithError[] Values)[] series)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, values) in series)
        {
            var keep = Enumerable.Range(0, x.Length).Where(i => double.IsFinite(values[i].Mean)).ToArray();
            if (keep.Length == 0) continue;
            var xs = keep.Select(i => x[i]).ToArray();
            var ys = keep.Select(i => values[i].Mean).ToArray();
            var errors = keep.Select(i => double.IsFinite(values[i].StdErr) ? values[i].StdErr : 0).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = label;
            var bars = plot.Add.ErrorBar(xs, ys, errors);
            bars.Color = line.Color;
        }
        plot.Title(title);
        plot.XLabel("response position j");
        plot.YLabel(yLabel);
        if (series.Length > 1) plot.ShowLegend();
        return
        [
            AtomicFile.Write(Path.Combine(directory, name + ".png"), temp => plot.SavePng(temp, Width, Height)),
            AtomicFile.Write(Path.Combine(directory, name + ".svg"), temp => plot.SaveSvg(temp, Width, Height)),
        ];
    }

    private sealed class ScottPlotProfileRenderer : IProfilePlotRenderer
    {
        public IReadOnlyList<string> Write(string directory, ProfileReport report)
        {
            ArgumentNullException.ThrowIfNull(report);
            return ProfilePlots.Write(directory, report.Aggregates, report.GradientProbe);
        }
    }
}
