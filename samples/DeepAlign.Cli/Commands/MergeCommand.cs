using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DeepAlign.Data;
using DeepAlign.Evaluation;
using DeepAlign.Method.Detection;
using DeepAlign.Reporting;
using DeepAlign.Runtime;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign merge --output F PART...</c>: merges the partial reports of a sharded <c>profile</c> (profile.partial.json
/// files or the shard output folders; --output is the report folder) or <c>attack</c> run (--output is the results JSON)
/// exactly: counts and sums add up, rates and means come from the totals (docs/scale-out.md). Overlapping, missing or
/// mismatched shards fail with exit 1 and a message naming the files.
/// </summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--output") { Description = "Profile: the report folder; attack: the results JSON file.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the JSON report instead of the Markdown summary." };
        var parts = new Argument<string[]>("parts") { Description = "One partial report (or profile shard folder) per shard.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("merge", "Merge the partial reports of a sharded profile or attack run (exact: sums and counts).") { output, json, parts };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var files = parse.GetValue(parts)!;
            string outPath = parse.GetValue(output)!;
            if (KindOf(files[0]) == AttackPartialReport.Kind)
            {
                var report = AttackPartialReport.MergeFiles(files);
                AtomicFile.WriteAllText(outPath, report.ToJson());
                Console.WriteLine(parse.GetValue(json) ? report.ToJson() : report.ToMarkdown());
            }
            else
            {
                var report = ProfilePartialReport.MergeFiles(files);
                ProfileReportWriter.Write(outPath, report, ProfilePlots.Renderer);
                if (parse.GetValue(json)) Console.WriteLine(ProfileReportWriter.ToJson(report));
                else
                {
                    Console.WriteLine(ProfileReportWriter.ToMarkdown(report));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"merged {files.Length} shards; wrote {outPath}"));
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The <c>kind</c> of a partial (a folder is a profile shard's output folder).</summary>
    private static string? KindOf(string path)
    {
        if (Directory.Exists(path)) return ProfilePartialReport.Kind;
        if (!File.Exists(path)) throw new FileNotFoundException($"Partial report '{path}' does not exist.", path);
        try
        {
            using var stream = File.OpenRead(path);
            using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 64 });
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("kind", out var k) ? k.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new ShardMergeException(ShardMergeError.Format, $"{path}: not valid partial JSON ({e.Message}).", e);
        }
    }
}
