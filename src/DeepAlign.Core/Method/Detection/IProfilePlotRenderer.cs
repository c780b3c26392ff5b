namespace DeepAlign.Method.Detection;

/// <summary>
/// Draws the plots of a <see cref="ProfileReport"/> into the report folder. <see cref="ProfileReportWriter.Write"/> calls
/// it before it writes the Markdown summary, which then links exactly the files the renderer returned. DeepAlign.Core
/// draws nothing itself (it has no plotting dependency); the <c>DeepAlign.Reporting</c> package provides the ScottPlot
/// implementation (<c>DeepAlign.Reporting.ProfilePlots.Renderer</c>: <c>kl</c>, <c>u</c>, <c>bf_rate</c>,
/// <c>grad_norm</c> as PNG and SVG).
/// </summary>
public interface IProfilePlotRenderer
{
    /// <summary>
    /// Writes the plot files of <paramref name="report"/> into <paramref name="directory"/> (which exists). Each file
    /// should be written under a temporary name in the same folder and renamed into place, so a reader never sees a
    /// half-written file.
    /// </summary>
    /// <param name="directory">The report folder.</param>
    /// <param name="report">The report.</param>
    /// <returns>The files written, as paths that are absolute or relative to <paramref name="directory"/>, in the order
    /// the Markdown summary should list them (files that share a name apart from the extension are grouped).</returns>
    IReadOnlyList<string> Write(string directory, ProfileReport report);
}
