using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DeepAlign.Data;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign convert --input F [--format F] [--targets T.json] --output F.jsonl [--layout canonical|chat|preference] [--json]</c>:
/// reads a dataset of any supported layout (JSONL, AdvBench or HarmBench CSV, field CSV) and writes it as JSONL: DeepAlign's
/// canonical lines, chat <c>messages</c> (the response as the final assistant turn), or TRL's conversational preference
/// pairs (chosen = chosen or safe_response, rejected = rejected or harmful_response). Calls
/// <see cref="JsonlDatasetWriter.Write(string, IEnumerable{DatasetRecord}, JsonlLayout)"/>; nothing is written when a record
/// does not fit the layout.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "Dataset file (JSONL or CSV; docs/data-formats.md).", Required = true };
        var output = new Option<string>("--output") { Description = "JSONL file to write (atomically).", Required = true };
        var layout = new Option<string>("--layout") { Description = "Output layout: canonical (DeepAlign's lines), chat (messages with the response as the last assistant turn) or preference (TRL conversational prompt/chosen/rejected).", DefaultValueFactory = _ => "canonical" };
        var json = new Option<bool>("--json") { Description = "Print {\"records\", \"format\", \"layout\", \"output\"} as JSON." };
        var dataset = new DatasetArguments();
        var command = new Command("convert", "Convert a dataset (JSONL, AdvBench/HarmBench CSV) to JSONL: canonical, chat messages or TRL preference pairs.")
        {
            input, output, layout, json,
        };
        dataset.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string inputPath = parse.GetValue(input)!, outputPath = parse.GetValue(output)!;
            var target = parse.GetValue(layout)!.Trim().ToLowerInvariant() switch
            {
                "canonical" => JsonlLayout.Canonical,
                "chat" => JsonlLayout.Chat,
                "preference" => JsonlLayout.Preference,
                var other => throw new ArgumentException($"--layout: unknown layout '{other}'; use canonical, chat or preference."),
            };
            if (!File.Exists(inputPath)) throw new FileNotFoundException($"Input file '{inputPath}' does not exist.", inputPath);
            var format = dataset.Resolve(parse, inputPath);
            var records = dataset.Stream(parse, inputPath, format).ToList();
            JsonlDatasetWriter.Write(outputPath, records, target);
            string layoutName = target.ToString().ToLowerInvariant();
            Console.WriteLine(parse.GetValue(json)
                ? new JsonObject { ["records"] = records.Count, ["format"] = DatasetArguments.Name(format), ["layout"] = layoutName, ["output"] = outputPath }.ToJsonString()
                : string.Create(CultureInfo.InvariantCulture, $"wrote {records.Count} records ({DatasetArguments.Name(format)} -> {layoutName}) to {outputPath}"));
            return ExitCodes.Success;
        }));
        return command;
    }
}
