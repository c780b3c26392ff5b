using System.Text.RegularExpressions;
using DeepAlign.Method.Detection;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using Xunit;
using DeepAlign.Tests.Support;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>The plot seam of <see cref="ProfileReportWriter"/>: Core draws nothing itself, and profile.md links exactly the
/// files a renderer reports.</summary>
public class ProfileReportRendererTests
{
    private sealed class FakeRenderer(Func<string, IReadOnlyList<string>> write) : IProfilePlotRenderer
    {
        public int Calls { get; private set; }

        public IReadOnlyList<string> Write(string directory, ProfileReport report)
        {
            Calls++;
            return write(directory);
        }
    }
    [Fact]
    public void Markdown_links_exactly_the_files_the_renderer_wrote()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("stale.png"), "left over from an earlier run");
        var report = ProfileInputAndReportTests.SampleReport(dir.Path);
        var renderer = new FakeRenderer(d =>
        {
            File.WriteAllText(Path.Combine(d, "a.png"), "png");
            File.WriteAllText(Path.Combine(d, "a.svg"), "svg");
            Directory.CreateDirectory(Path.Combine(d, "sub"));
            File.WriteAllText(Path.Combine(d, "sub", "b c.svg"), "svg");
            return ["a.png", Path.GetFullPath(Path.Combine(d, "a.svg")), Path.Combine("sub", "b c.svg")];
        });

        var written = ProfileReportWriter.Write(dir.Path, report, renderer);

        renderer.Calls.Should().Be(1);
        written.Should().Equal(dir.File("a.png"), dir.File("a.svg"), Path.Combine(dir.Path, "sub", "b c.svg"), dir.File("profile.md"), dir.File("profile.json"));
        var md = File.ReadAllText(dir.File("profile.md"));
        MarkdownLinks.Plots(md).Should().Equal("a.png", "a.svg", "sub/b c.svg");
        md.Should().Contain("![a](a.png) · [a.svg](a.svg)").And.Contain("![b c](sub/b%20c.svg)").And.NotContain("stale");
        foreach (var link in MarkdownLinks.Plots(md)) File.Exists(Path.Combine(dir.Path, link)).Should().BeTrue(link);
    }

    [Fact]
    public void A_renderer_that_fails_or_reports_a_missing_file_leaves_no_summary()
    {
        using var dir = new TempDir();
        var report = ProfileInputAndReportTests.SampleReport(dir.Path);

        FluentActions.Invoking(() => ProfileReportWriter.Write(dir.Path, report, new FakeRenderer(_ => ["nothing.png"])))
            .Should().Throw<InvalidOperationException>().WithMessage("*nothing.png*");
        FluentActions.Invoking(() => ProfileReportWriter.Write(dir.Path, report, new FakeRenderer(_ => throw new IOException("disk full"))))
            .Should().Throw<IOException>().WithMessage("disk full");
        File.Exists(dir.File("profile.md")).Should().BeFalse();
        File.Exists(dir.File("profile.json")).Should().BeFalse();
    }

    [Fact]
    public void Markdown_without_plot_files_has_no_plots_section()
    {
        using var dir = new TempDir();
        var report = ProfileInputAndReportTests.SampleReport(dir.Path);
        ProfileReportWriter.ToMarkdown(report).Should().NotContain("## Plots");
        ProfileReportWriter.ToMarkdown(report, []).Should().Be(ProfileReportWriter.ToMarkdown(report));
        ProfileReportWriter.ToMarkdown(report, ["u.svg", "kl.png", "kl.svg", "notes.txt"]).Should()
            .EndWith("## Plots\n\n![u](u.svg)\n\n![kl](kl.png) · [kl.svg](kl.svg)\n\n[notes.txt](notes.txt)\n\n".ReplaceLineEndings());
    }

    [Fact]
    public void Core_does_not_reference_a_plotting_library()
    {
        typeof(ProfileReportWriter).Assembly.GetReferencedAssemblies().Select(a => a.Name)
            .Should().NotContain(n => n!.StartsWith("ScottPlot", StringComparison.Ordinal) || n.StartsWith("SkiaSharp", StringComparison.Ordinal));
    }
}
