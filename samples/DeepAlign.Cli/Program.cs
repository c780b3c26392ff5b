using System.CommandLine;
using DeepAlign.Cli.Commands;

namespace DeepAlign.Cli;

/// <summary>
/// The <c>deepalign</c> command-line tool. Exit codes: 0 success, 1 failure, 2 usage error; errors go to
/// stderr as one line. Each command lives in its own file under Commands/ and is registered here.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        // Before anything touches libtorch: intra-op threads = cores (one worker; the organism command sets its own) and
        // OpenMP threads that sleep while waiting (docs/performance.md, "Threads").
        DeepAlign.Runtime.TorchThreads.Configure();
        var root = new RootCommand("DeepAlign: find and finish incomplete safety alignment in causal language models.");
        foreach (var command in CommandRegistry.All())
            root.Subcommands.Add(command);

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
                Console.Error.WriteLine($"deepalign: {error.Message}");
            Console.Error.WriteLine("Run 'deepalign --help' for usage.");
            return ExitCodes.Usage;
        }
        return parse.Invoke();
    }
}

/// <summary>Process exit codes shared by every command.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;
}
