using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DeepAlign.Organism;

namespace DeepAlign.Cli.Commands;

/// <summary><c>deepalign world --output DIR [--seed N] [--json]</c>: writes the generated organism world.</summary>
internal static class WorldCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--output") { Description = "Directory to write the world files into.", Required = true };
        var seed = new Option<ulong?>("--seed") { Description = "Generator seed (default: the pinned world's seed)." };
        var json = new Option<bool>("--json") { Description = "Print the world statistics as JSON." };
        var command = new Command("world", "Generate the organism world (datasets, tokenizer files, judge spec) into a directory.")
        {
            output, seed, json,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var options = new WorldOptions();
            if (parse.GetValue(seed) is ulong s) options = options with { Seed = s };
            var world = OrganismWorld.Generate(options);
            string dir = parse.GetValue(output)!;
            world.WriteTo(dir);
            var stats = world.ComputeStatistics();
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(stats));
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {dir}: vocab {stats.VocabularySize}, pretrain {stats.PretrainCount} ({stats.PretrainTokens} tokens), " +
                    $"align {stats.AlignHarmfulCount} harmful + {stats.AlignBenignCount} benign, held-out {stats.HeldoutHarmfulCount} harmful + {stats.HeldoutBenignCount} benign"));
            return ExitCodes.Success;
        }));
        return command;
    }
}
