using DeepAlign.Method.Detection;
using DeepAlign.Reporting;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Tests.Method.Detection;
using FluentAssertions;
using Xunit;
using DeepAlign.Tests.Support;

namespace DeepAlign.Tests.Reporting;

/// <summary>The ScottPlot profile plots of DeepAlign.Reporting, through <see cref="ProfileReportWriter"/>'s renderer seam.</summary>
public class ProfilePlotsTests
{
    [Fact]
    public void Renderer_writes_valid_png_and_svg_and_markdown_links_them()
    {
        using var dir = new TempDir();
        var report = ProfileInputAndReportTests.SampleReport(dir.Path);
        var written = ProfileReportWriter.Write(dir.Path, report, ProfilePlots.Renderer);

        string[] names = ["kl", "u", "bf_rate", "grad_norm"];
        var plotFiles = names.SelectMany(n => new[] { n + ".png", n + ".svg" }).ToArray();
        written.Select(Path.GetFileName).Should().Equal([.. plotFiles, "profile.md", "profile.json"]);
        foreach (var name in names)
        {
            ImageFiles.ShouldBePng(dir.File(name + ".png"), ProfilePlots.Width, ProfilePlots.Height);
            ImageFiles.ShouldBeSvg(dir.File(name + ".svg"), ProfilePlots.Width, ProfilePlots.Height);
        }
        Directory.GetFiles(dir.Path, ".tmp-*").Should().BeEmpty();
        var md = File.ReadAllText(dir.File("profile.md"));
        MarkdownLinks.Plots(md).Should().Equal(plotFiles);
        md.Should().Contain("![grad_norm](grad_norm.png) · [grad_norm.svg](grad_norm.svg)");
    }

    [Fact]
    public void Without_a_probe_there_is_no_gradient_plot_and_no_link_to_an_old_one()
    {
        using var dir = new TempDir();
        ProfileReportWriter.Write(dir.Path, ProfileInputAndReportTests.SampleReport(dir.Path), ProfilePlots.Renderer);
        File.Exists(dir.File("grad_norm.png")).Should().BeTrue();

        // Second run into the same folder without the probe: the old grad_norm files stay (other files are left alone)
        // but the new summary does not link them.
        var written = ProfileReportWriter.Write(dir.Path, ProfileInputAndReportTests.SampleReport(dir.Path, withProbe: false), ProfilePlots.Renderer);
        written.Should().HaveCount(8);
        written.Should().NotContain(p => Path.GetFileName(p).StartsWith("grad_norm", StringComparison.Ordinal));
        var links = MarkdownLinks.Plots(File.ReadAllText(dir.File("profile.md")));
        links.Should().Equal("kl.png", "kl.svg", "u.png", "u.svg", "bf_rate.png", "bf_rate.svg");
    }

    [Fact]
    public void Write_draws_into_a_new_folder()
    {
        using var dir = new TempDir();
        var report = ProfileInputAndReportTests.SampleReport(dir.Path);
        string target = Path.Combine(dir.Path, "plots", "nested");
        var written = ProfilePlots.Write(target, report.Aggregates);
        written.Should().Equal(new[] { "kl.png", "kl.svg", "u.png", "u.svg", "bf_rate.png", "bf_rate.svg" }.Select(f => Path.Combine(target, f)));
        ImageFiles.ShouldBePng(written[0], ProfilePlots.Width, ProfilePlots.Height);
        FluentActions.Invoking(() => ProfilePlots.Write("", report.Aggregates)).Should().Throw<ArgumentException>();
    }
}
