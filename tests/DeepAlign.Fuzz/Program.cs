using System.Diagnostics;
using System.Text.Json;
using SharpFuzz;

namespace DeepAlign.Fuzz;

/// <summary>
/// DeepAlign's fuzz harness (docs/reliability.md).
/// <list type="bullet">
/// <item><c>afl TARGET</c>: SharpFuzz entry for AFL++ (instrument first: <c>sharpfuzz DeepAlign.Core.dll</c>); a typed error
/// is a normal outcome, any other exception a crash.</item>
/// <item><c>campaign --inputs N [--out DIR] [--timeout-ms T] [--targets a,b]</c>: deterministic mutation campaign over the
/// committed seed corpus, N inputs spread over the targets, each in a worker process with a per-input timeout, so
/// crashes (process death), hangs and unexpected exceptions are all counted; prints and writes a JSON summary.</item>
/// <item><c>replay TARGET FILE...</c>: runs saved inputs and prints each outcome.</item>
/// </list>
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0) { Console.Error.WriteLine("usage: afl TARGET | campaign --inputs N [--out DIR] | replay TARGET FILE... | worker ..."); return 2; }
        switch (args[0])
        {
            case "afl":
            {
                // No instrumented code may run before SharpFuzz sets up AFL's shared memory: resolve the target inside.
                var name = args[1];
                var dir = Directory.CreateTempSubdirectory("deepalign-afl-").FullName;
                Fuzzer.OutOfProcess.Run(stream =>
                {
                    var target = Targets.Get(name);
                    using var ms = new MemoryStream();
                    stream.CopyTo(ms);
                    try { target.Run(ms.ToArray(), dir); }
                    catch (Exception e) when (Targets.IsExpected(target, e)) { }
                });
                return 0;
            }
            case "replay":
            {
                var target = Targets.Get(args[1]);
                var bad = 0;
                foreach (var file in args.Skip(2))
                {
                    var dir = Directory.CreateTempSubdirectory("deepalign-replay-").FullName;
                    var outcome = Execute(target, File.ReadAllBytes(file), dir);
                    Directory.Delete(dir, recursive: true);
                    Console.WriteLine($"{file}: {outcome}");
                    if (!outcome.StartsWith("ok", StringComparison.Ordinal) && !outcome.StartsWith("typed", StringComparison.Ordinal)) bad++;
                }
                return bad == 0 ? 0 : 1;
            }
            case "worker":
                return Campaign.Worker(args);
            case "campaign":
                return Campaign.Run(args);
            default:
                Console.Error.WriteLine($"unknown mode '{args[0]}'");
                return 2;
        }
    }

    /// <summary>Runs one input and classifies it: ok, typed (the format's own exception), or unexpected (anything else).</summary>
    public static string Execute(FuzzTarget target, byte[] input, string dir)
    {
        try
        {
            target.Run(input, dir);
            return "ok";
        }
        catch (Exception e) when (Targets.IsExpected(target, e))
        {
            return $"typed {e.GetType().Name}";
        }
        catch (Exception e)
        {
            return $"unexpected {e.GetType().FullName}: {e.Message.ReplaceLineEndings(" ")} @ {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}";
        }
    }
}
