using System.CommandLine;
using System.Diagnostics;
using FluentAssertions;

namespace DeepAlign.Tests.Support;

/// <summary>Runs the <c>deepalign</c> tool in tests, as a separate process or in process.</summary>
internal static class CliRunner
{
    /// <summary>Runs the built <c>deepalign.dll</c> (copied next to the tests) as a process and collects its output.</summary>
    public static (int Code, string Out, string Err) AsProcess(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "deepalign.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit(120_000).Should().BeTrue("the tool should finish within two minutes");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs the given commands in process with the console redirected (faster; no model reload per process).</summary>
    public static (int Code, string Out, string Err) InProcess(IEnumerable<Command> commands, params string[] args)
    {
        var root = new RootCommand();
        foreach (var c in commands) root.Subcommands.Add(c);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (root.Parse(args).Invoke(), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
