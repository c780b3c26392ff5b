using System.CommandLine;

namespace DeepAlign.Cli.Commands;

/// <summary>Every subcommand of the tool, one line each (each command is defined in its own file).</summary>
internal static class CommandRegistry
{
    public static IEnumerable<Command> All()
    {
        yield return WorldCommand.Create();
        yield return OrganismCommand.Create();
    }
}
