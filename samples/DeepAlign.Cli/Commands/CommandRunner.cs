namespace DeepAlign.Cli.Commands;

/// <summary>Runs a command body and turns exceptions into one clear stderr line and an exit code.</summary>
internal static class CommandRunner
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("deepalign: cancelled.");
            return ExitCodes.Failure;
        }
        catch (ArgumentException e)
        {
            // Bad FLAGS exit 2. Bad FILES exit 1: every file format has its own typed exception (docs/reliability.md),
            // and data or model-pair problems are typed too (DatasetFormatException, VocabularyMismatchException).
            Console.Error.WriteLine($"deepalign: {OneLine(e.Message)}");
            return ExitCodes.Usage;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"deepalign: {OneLine(e.Message)}");
            return ExitCodes.Failure;
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}
