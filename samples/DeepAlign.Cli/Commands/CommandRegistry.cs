using System.CommandLine;

namespace DeepAlign.Cli.Commands;

/// <summary>Every subcommand of the tool, one line each (each command is defined in its own file).</summary>
internal static class CommandRegistry
{
    public static IEnumerable<Command> All()
    {
        yield return WorldCommand.Create();
        yield return InspectCommand.Create();
        yield return ScoreCommand.Create();
        yield return TokenizeCommand.Create();
        yield return ChatFormatCommand.Create();
        yield return TrainCommand.Create();
        yield return GenerateCommand.Create();
        yield return DecodeCommand.Create();
        yield return ProfileCommand.Create();
        yield return OrganismCommand.Create();
        yield return AttackCommand.Create();
        yield return MergeCommand.Create();
        yield return ConvertCommand.Create();
    }
}
