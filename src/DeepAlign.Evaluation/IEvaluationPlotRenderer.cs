namespace DeepAlign.Evaluation;

/// <summary>
/// Draws plots of an <see cref="EvaluationReport"/> into a folder. The evaluation package writes JSON and Markdown
/// only; <c>DeepAlign.Reporting</c> provides an implementation (<c>EvaluationPlots.Renderer</c>, ScottPlot PNG/SVG),
/// so applications that want no graphics dependency never load one.
/// </summary>
public interface IEvaluationPlotRenderer
{
    /// <summary>Writes the plots and returns their file names (relative to <paramref name="directory"/>).</summary>
    /// <param name="directory">Existing output folder.</param>
    /// <param name="report">The report to draw.</param>
    IReadOnlyList<string> Write(string directory, EvaluationReport report);
}
