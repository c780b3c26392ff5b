using System.Text.RegularExpressions;

namespace DeepAlign.Tests.Support;

/// <summary>Reads links out of generated Markdown reports.</summary>
internal static class MarkdownLinks
{
    /// <summary>The link targets of the Plots section of a report (empty when there is none).</summary>
    public static List<string> Plots(string markdown)
    {
        int at = markdown.IndexOf("## Plots", StringComparison.Ordinal);
        if (at < 0) return [];
        return Regex.Matches(markdown[at..], @"\]\(([^)]+)\)").Select(m => Uri.UnescapeDataString(m.Groups[1].Value)).ToList();
    }
}
