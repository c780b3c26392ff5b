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
        catch (ArgumentException e) when (IsUsageError(e))
        {
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

    /// <summary>
    /// Bad FLAGS exit 2, bad FILES exit 1. An <see cref="ArgumentException"/> is a usage error when it was thrown by this
    /// tool's own flag checks or by an options record's validation / a name parser (<c>Validate</c>, <c>Parse*</c>, an
    /// <c>*Options</c>/<c>*Limits</c> type); one thrown deeper in the library is about the data or the models the flags
    /// pointed to (e.g. a model pair that does not share a tokenizer) and exits 1.
    /// </summary>
    internal static bool IsUsageError(ArgumentException e)
    {
        foreach (var frame in new System.Diagnostics.StackTrace(e, false).GetFrames())
        {
            var method = frame.GetMethod();
            var type = method?.DeclaringType;
            while (type?.DeclaringType is not null && type.Name.StartsWith('<')) type = type.DeclaringType; // lambdas, iterators
            if (type is null) continue;
            if ((type.Namespace ?? "").StartsWith("System", StringComparison.Ordinal)) continue; // ThrowIfNull and friends
            if (type.Assembly == typeof(CommandRunner).Assembly) return true;
            var name = method!.Name;
            return name is "Validate" || name.StartsWith("Parse", StringComparison.Ordinal)
                || type.Name.EndsWith("Options", StringComparison.Ordinal) || type.Name.EndsWith("Limits", StringComparison.Ordinal)
                || type.Name.EndsWith("Arguments", StringComparison.Ordinal);
        }
        return true;
    }
}
