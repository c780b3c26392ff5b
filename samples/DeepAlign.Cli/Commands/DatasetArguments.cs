using System.CommandLine;
using DeepAlign.Data;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// The dataset options shared by <c>profile</c>, <c>attack</c> and <c>convert</c>: the file layout (<c>--format</c>,
/// detected by default) and HarmBench-style target strings kept in a separate file (<c>--targets</c>).
/// </summary>
internal sealed class DatasetArguments
{
    public Option<string> Format { get; } = new("--format")
    {
        Description = $"Dataset layout: {string.Join(", ", DatasetReader.FormatNames)} (auto: .jsonl is JSONL, .csv by its header: goal,target is AdvBench; Behavior,...,BehaviorID is HarmBench; else JSONL field names).",
        DefaultValueFactory = _ => "auto",
    };

    public Option<string?> Targets { get; } = new("--targets")
    {
        Description = "JSON object of target strings by record id (HarmBench's harmbench_targets_text.json): sets each record's harmful_response (the prefix the prefilling attacks force).",
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Format);
        command.Options.Add(Targets);
    }

    /// <summary>The layout of <paramref name="path"/>: the one given, or the detected one (never <see cref="DatasetFormat.Auto"/>).</summary>
    /// <exception cref="ArgumentException">An unknown --format (exit 2).</exception>
    public DatasetFormat Resolve(ParseResult parse, string path)
    {
        var format = DatasetReader.ParseFormat(parse.GetValue(Format)!);
        return format == DatasetFormat.Auto ? DatasetReader.Detect(path) : format;
    }

    /// <summary>The records of <paramref name="path"/> in layout <paramref name="format"/>, with --targets applied, streaming.</summary>
    public IEnumerable<DatasetRecord> Stream(ParseResult parse, string path, DatasetFormat format, CancellationToken cancellationToken = default)
    {
        var records = DatasetReader.StreamFile(path, format, cancellationToken);
        return parse.GetValue(Targets) is { } targets ? DatasetTargets.Apply(records, DatasetTargets.ReadFile(targets)) : records;
    }

    /// <summary>The name of a layout as --format spells it.</summary>
    public static string Name(DatasetFormat format) => DatasetReader.FormatNames[(int)format];
}
