using DeepAlign.Runtime;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DeepAlign.Method.Detection;

/// <summary>
/// Writes profile reports: <c>profile.json</c> (versioned schema, docs/profile-report.md), <c>profile.md</c> (summary
/// tables) and, through an optional <see cref="IProfilePlotRenderer"/> (the <c>DeepAlign.Reporting</c> package has the
/// ScottPlot one), plots. Every file is written to a temporary name in the target folder and renamed into place, so a
/// reader never sees a half-written file.
/// </summary>
public static class ProfileReportWriter
{
    /// <summary>File name of the JSON report.</summary>
    public const string JsonFile = "profile.json";

    /// <summary>File name of the Markdown summary.</summary>
    public const string MarkdownFile = "profile.md";

    /// <summary>
    /// Writes the plots (when a renderer is given), then the Markdown summary (linking exactly the plot files the
    /// renderer returned), then the JSON report into <paramref name="directory"/>.
    /// </summary>
    /// <param name="directory">Output folder (created if needed; other files in it are left alone).</param>
    /// <param name="report">The report.</param>
    /// <param name="plots">Draws the plots, e.g. <c>DeepAlign.Reporting.ProfilePlots.Renderer</c>; null writes no plots.</param>
    /// <returns>The full paths written: the plots, <see cref="MarkdownFile"/>, <see cref="JsonFile"/>.</returns>
    public static IReadOnlyList<string> Write(string directory, ProfileReport report, IProfilePlotRenderer? plots = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(report);
        Directory.CreateDirectory(directory);
        var root = Path.GetFullPath(directory);
        var written = new List<string>();
        var links = new List<string>();
        if (plots is not null)
            foreach (var file in plots.Write(directory, report))
            {
                var full = Path.GetFullPath(Path.Combine(root, file));
                if (!File.Exists(full))
                    throw new InvalidOperationException($"The plot renderer {plots.GetType().Name} reported '{file}', but no such file exists in '{root}'.");
                written.Add(full);
                links.Add(Path.GetRelativePath(root, full));
            }
        written.Add(AtomicFile.WriteAllText(Path.Combine(root, MarkdownFile), ToMarkdown(report, links)));
        written.Add(AtomicFile.WriteAllText(Path.Combine(root, JsonFile), ToJson(report)));
        return written;
    }

    /// <summary>The JSON report (schema version <see cref="ProfileReport.SchemaVersion"/>).</summary>
    /// <param name="report">The report.</param>
    /// <returns>Indented UTF-8 JSON text.</returns>
    public static string ToJson(ProfileReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("schema_version", ProfileReport.SchemaVersion);
            w.WriteString("kind", "deepalign.incompleteness_profile");
            w.WriteString("created_utc", report.CreatedUtc.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
            w.WriteString("mode", report.Mode);
            if (report.ForcedPrefixTokens is int k) w.WriteNumber("forced_prefix_tokens", k); else w.WriteNull("forced_prefix_tokens");
            w.WriteStartObject("sources");
            w.WriteString("base", report.BaseModel);
            w.WriteString("aligned", report.AlignedModel);
            w.WriteString("input", report.Input);
            w.WriteEndObject();
            var o = report.Options;
            w.WriteStartObject("options");
            Number(w, "tau", o.Tau);
            w.WriteNumber("top_k_base", o.TopKBase);
            w.WriteNumber("report_top_items", o.ReportTopItems);
            w.WriteStartArray("bucket_starts");
            foreach (var s in o.BucketStarts) w.WriteNumberValue(s);
            w.WriteEndArray();
            w.WriteNumber("batch_size", o.BatchSize);
            w.WriteNumber("max_response_tokens", o.MaxResponseTokens);
            Number(w, "completion_margin", o.CompletionMargin);
            w.WriteEndObject();
            var a = report.Aggregates;
            w.WriteStartObject("totals");
            w.WriteNumber("sequences", a.Sequences);
            w.WriteNumber("tokens", a.Tokens);
            w.WriteEndObject();
            w.WriteStartObject("aggregates");
            w.WriteStartArray("by_position");
            foreach (var p in a.ByPosition)
            {
                w.WriteStartObject();
                w.WriteNumber("position", p.Position);
                w.WriteNumber("n", p.N);
                Stats(w, p.Kl, p.KlReverse, p.U, p.BaseFavoredRate);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("by_bucket");
            foreach (var b in a.ByBucket)
            {
                w.WriteStartObject();
                w.WriteString("bucket", b.Label);
                w.WriteNumber("start", b.Start);
                if (b.End is int e) w.WriteNumber("end", e); else w.WriteNull("end");
                w.WriteNumber("n", b.N);
                w.WriteNumber("tokens", b.Tokens);
                Stats(w, b.Kl, b.KlReverse, b.U, b.BaseFavoredRate);
                if (b.Completes is bool c) w.WriteBoolean("completes", c); else w.WriteNull("completes");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("completion");
            Number(w, "margin", a.CompletionMargin);
            Number(w, "reference_u", a.ByBucket.Count > 0 ? a.ByBucket[0].U.Mean : double.NaN);
            w.WriteString("first_incomplete_bucket", a.FirstIncompleteBucket?.Label);
            w.WriteEndObject();
            w.WriteEndObject();
            if (report.GradientProbe is { } g)
            {
                w.WriteStartObject("gradient_probe");
                w.WriteNumber("max_positions", g.Options.MaxPositions);
                w.WriteNumber("last_layers", g.Options.LastLayers);
                w.WriteNumber("sequences", g.Sequences);
                w.WriteStartArray("parameters");
                foreach (var n in g.ParameterNames) w.WriteStringValue(n);
                w.WriteEndArray();
                w.WriteStartArray("by_position");
                foreach (var p in g.ByPosition)
                {
                    w.WriteStartObject();
                    w.WriteNumber("position", p.Position);
                    w.WriteNumber("n", p.N);
                    Number(w, "grad_norm_mean", p.Norm.Mean);
                    Number(w, "grad_norm_mean_se", p.Norm.StdErr);
                    Number(w, "share", p.Share);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            else w.WriteNull("gradient_probe");
            w.WriteString("sequences_file", report.SequencesFile);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Stats(Utf8JsonWriter w, MeanWithError kl, MeanWithError klr, MeanWithError u, MeanWithError bf)
    {
        Number(w, "kl_mean", kl.Mean); Number(w, "kl_mean_se", kl.StdErr);
        Number(w, "kl_reverse_mean", klr.Mean); Number(w, "kl_reverse_mean_se", klr.StdErr);
        Number(w, "u_mean", u.Mean); Number(w, "u_mean_se", u.StdErr);
        Number(w, "bf_rate", bf.Mean); Number(w, "bf_rate_se", bf.StdErr);
    }

    internal static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value); else w.WriteNull(name);
    }

    /// <summary>
    /// The Markdown summary: totals, the per-bucket table with the completion check, the first positions, the probe, and
    /// (when <paramref name="plotFiles"/> is not empty) a Plots section linking those files.
    /// </summary>
    /// <param name="report">The report.</param>
    /// <param name="plotFiles">Plot files to link, relative to the Markdown file; files that differ only in the extension
    /// form one entry (the first image shown, the others linked). Null or empty: no Plots section.</param>
    /// <returns>Markdown text.</returns>
    public static string ToMarkdown(ProfileReport report, IReadOnlyList<string>? plotFiles = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        var a = report.Aggregates;
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine("# Incompleteness profile").AppendLine();
        sb.AppendLine(ci, $"- mode: {report.Mode}{(report.ForcedPrefixTokens is int k ? $" (forced prefix {k} tokens)" : "")}");
        if (report.BaseModel is not null) sb.AppendLine(ci, $"- base: `{report.BaseModel}`");
        if (report.AlignedModel is not null) sb.AppendLine(ci, $"- aligned: `{report.AlignedModel}`");
        if (report.Input is not null) sb.AppendLine(ci, $"- input: `{report.Input}`");
        sb.AppendLine(ci, $"- sequences: {a.Sequences}, response tokens: {a.Tokens}");
        sb.AppendLine(ci, $"- tau = {F(report.Options.Tau)}, kB = {report.Options.TopKBase}, max response tokens = {report.Options.MaxResponseTokens}");
        var first = a.FirstIncompleteBucket;
        string verdict = first is null ? "every bucket completes"
            : $"incomplete from bucket {first.Label} on (U = {F(first.U.Mean)} vs {F(a.ByBucket[0].U.Mean)} at position 1)";
        sb.AppendLine(ci, $"- completion (bucket mean U at most {F(a.CompletionMargin)} above bucket 1): {verdict}");
        sb.AppendLine().AppendLine("## By bucket (mean ± standard error across sequences)").AppendLine();
        sb.AppendLine("| bucket | n | tokens | KL(a‖b) | KL(b‖a) | U | base-favored rate | completes |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|:---:|");
        foreach (var b in a.ByBucket)
            sb.AppendLine(ci, $"| {b.Label} | {b.N} | {b.Tokens} | {Pm(b.Kl)} | {Pm(b.KlReverse)} | {Pm(b.U)} | {Pm(b.BaseFavoredRate)} | {(b.Completes is bool c ? (c ? "yes" : "no") : "-")} |");
        sb.AppendLine().AppendLine("## First positions").AppendLine();
        sb.AppendLine("| j | n | KL(a‖b) | KL(b‖a) | U | base-favored rate |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|");
        foreach (var p in a.ByPosition.Take(20))
            sb.AppendLine(ci, $"| {p.Position} | {p.N} | {Pm(p.Kl)} | {Pm(p.KlReverse)} | {Pm(p.U)} | {Pm(p.BaseFavoredRate)} |");
        if (report.GradientProbe is { } g)
        {
            sb.AppendLine();
            sb.AppendLine(ci, $"## Gradient signal probe ({g.Sequences} sequences, last {g.Options.LastLayers} layers + output head)");
            sb.AppendLine();
            sb.AppendLine("| j | n | gradient norm | share |");
            sb.AppendLine("|---:|---:|---:|---:|");
            foreach (var p in g.ByPosition.Take(20))
                sb.AppendLine(ci, $"| {p.Position} | {p.N} | {Pm(p.Norm)} | {F(p.Share)} |");
        }
        if (report.SequencesFile is not null)
        {
            sb.AppendLine();
            sb.AppendLine(ci, $"Per-sequence details: `{report.SequencesFile}`.");
        }
        if (plotFiles is { Count: > 0 })
        {
            sb.AppendLine().AppendLine("## Plots").AppendLine();
            foreach (var group in plotFiles.Select(f => f.Replace('\\', '/')).GroupBy(f => Path.ChangeExtension(f, null), StringComparer.Ordinal))
            {
                var files = group.ToList();
                var image = files.FirstOrDefault(IsImage);
                var line = new StringBuilder();
                if (image is not null) line.Append(ci, $"![{Path.GetFileName(group.Key)}]({MarkdownLink(image)})");
                foreach (var f in files.Where(f => !ReferenceEquals(f, image)))
                    line.Append(line.Length > 0 ? " · " : "").Append(ci, $"[{Path.GetFileName(f)}]({MarkdownLink(f)})");
                sb.AppendLine(line.ToString()).AppendLine();
            }
        }
        return sb.ToString();
    }

    private static bool IsImage(string file) =>
        Path.GetExtension(file).ToLowerInvariant() is ".png" or ".svg" or ".jpg" or ".jpeg" or ".gif" or ".webp";

    private static string MarkdownLink(string relativePath) => string.Join('/', relativePath.Split('/').Select(Uri.EscapeDataString));

    /// <summary>A before/after comparison as Markdown (after - before, ± the standard error of the difference).</summary>
    /// <param name="comparison">The comparison.</param>
    /// <returns>Markdown text.</returns>
    public static string ComparisonMarkdown(ProfileComparison comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine("# Profile comparison (after - before)").AppendLine();
        sb.AppendLine("| bucket | n before | n after | Δ KL(a‖b) | Δ KL(b‖a) | Δ U | Δ base-favored rate |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var d in comparison.ByBucket)
            sb.AppendLine(ci, $"| {d.Label} | {d.NBefore} | {d.NAfter} | {Pm(d.Kl)} | {Pm(d.KlReverse)} | {Pm(d.U)} | {Pm(d.BaseFavoredRate)} |");
        return sb.ToString();
    }

    private static string F(double v) => double.IsFinite(v) ? v.ToString("0.####", CultureInfo.InvariantCulture) : "-";

    private static string Pm(MeanWithError m) => !double.IsFinite(m.Mean) ? "-" : double.IsFinite(m.StdErr) ? $"{F(m.Mean)} ± {F(m.StdErr)}" : F(m.Mean);
}
