using System.Diagnostics;
using System.Text.Json;

namespace DeepAlign.Fuzz;

/// <summary>The in-process mutation campaign: a parent that spreads inputs over worker processes and counts outcomes.</summary>
internal static class Campaign
{
    private sealed class Tally
    {
        public long Inputs, Ok, Typed, Unexpected, Hangs, Crashes;
        public double Seconds;
        public List<string> Findings { get; } = new();
    }

    public static int Run(string[] args)
    {
        long inputs = long.Parse(Arg(args, "--inputs") ?? "50000");
        var outDir = Path.GetFullPath(Arg(args, "--out") ?? "fuzz-findings");
        int timeoutMs = int.Parse(Arg(args, "--timeout-ms") ?? "10000");
        var names = (Arg(args, "--targets") ?? string.Join(",", Targets.All.Select(t => t.Name))).Split(',');
        int start = int.Parse(Arg(args, "--start") ?? "0");
        Directory.CreateDirectory(outDir);
        var perTarget = inputs / names.Length;
        var tallies = new SortedDictionary<string, Tally>(StringComparer.Ordinal);
        var total = Stopwatch.StartNew();
        foreach (var name in names)
        {
            var tally = tallies[name] = new Tally();
            var sw = Stopwatch.StartNew();
            long next = start;
            long end = start + perTarget;
            while (next < end)
            {
                var state = Path.Combine(outDir, $"{name}.state.json");
                var current = Path.Combine(outDir, $"{name}.current");
                File.Delete(state);
                var psi = new ProcessStartInfo(Environment.ProcessPath!, [typeof(Campaign).Assembly.Location, "worker", name, next.ToString(), end.ToString(), state, current, timeoutMs.ToString()])
                {
                    RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
                };
                using var p = Process.Start(psi)!;
                var stderr = p.StandardError.ReadToEndAsync();
                var stdout = p.StandardOutput.ReadToEndAsync();
                p.WaitForExit();
                var result = File.Exists(state) ? JsonSerializer.Deserialize<WorkerResult>(File.ReadAllText(state))! : null;
                if (result is null)
                {
                    // The worker died: the input it was running is a crash.
                    var (n, input) = ReadCurrent(current);
                    tally.Crashes++;
                    tally.Inputs++;
                    var saved = Path.Combine(outDir, $"crash-{name}-{n}");
                    if (input is not null) File.WriteAllBytes(saved, input);
                    tally.Findings.Add($"crash #{n} (exit {p.ExitCode}) saved to {saved}: {Last(stderr.Result)}");
                    next = n + 1;
                    continue;
                }
                tally.Inputs += result.Inputs;
                tally.Ok += result.Ok;
                tally.Typed += result.Typed;
                tally.Unexpected += result.Unexpected.Count;
                foreach (var u in result.Unexpected)
                {
                    tally.Findings.Add(u);
                }
                next = result.Next;
                if (result.Hang is { } hang)
                {
                    tally.Hangs++;
                    tally.Inputs++;
                    var (n, input) = ReadCurrent(current);
                    var saved = Path.Combine(outDir, $"hang-{name}-{n}");
                    if (input is not null) File.WriteAllBytes(saved, input);
                    tally.Findings.Add($"hang #{n} (> {timeoutMs} ms) saved to {saved}");
                    next = n + 1;
                }
            }
            tally.Seconds = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"{name}: {tally.Inputs} inputs, {tally.Ok} ok, {tally.Typed} typed errors, {tally.Unexpected} unexpected, {tally.Hangs} hangs, {tally.Crashes} crashes, {tally.Seconds:F0} s");
            foreach (var f in tally.Findings.Take(20)) Console.WriteLine($"  {f}");
        }
        var summary = new
        {
            inputs = tallies.Values.Sum(t => t.Inputs),
            unexpected_outcomes = tallies.Values.Sum(t => t.Unexpected + t.Hangs + t.Crashes),
            seconds = total.Elapsed.TotalSeconds,
            timeout_ms = timeoutMs,
            start_seed = start,
            targets = tallies.ToDictionary(kv => kv.Key, kv => new { kv.Value.Inputs, kv.Value.Ok, kv.Value.Typed, kv.Value.Unexpected, kv.Value.Hangs, kv.Value.Crashes, kv.Value.Seconds, findings = kv.Value.Findings }),
        };
        var json = JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true });
        File.WriteAllText(Path.Combine(outDir, "summary.json"), json);
        Console.WriteLine($"total: {summary.inputs} inputs, {summary.unexpected_outcomes} unexpected outcomes (crashes + hangs + unexpected exceptions), {summary.seconds:F0} s");
        return summary.unexpected_outcomes == 0 ? 0 : 1;
    }

    private sealed record WorkerResult(long Inputs, long Ok, long Typed, List<string> Unexpected, long Next, string? Hang);

    /// <summary>Runs inputs [start, end) of one target; stops early at a hang (the parent restarts after it).</summary>
    public static int Worker(string[] args)
    {
        var target = Targets.Get(args[1]);
        long start = long.Parse(args[2]), end = long.Parse(args[3]);
        string state = args[4], current = args[5];
        int timeoutMs = int.Parse(args[6]);
        var seeds = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "corpus", target.Name)).Where(f => !f.EndsWith(".md", StringComparison.Ordinal))
            .Where(f => Path.GetFileName(f).StartsWith("seed", StringComparison.Ordinal)).OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        if (seeds.Length == 0) throw new InvalidOperationException($"no seed-* files for target {target.Name}");
        bool isJson = target.FileName.EndsWith(".json", StringComparison.Ordinal) || target.FileName.EndsWith(".jsonl", StringComparison.Ordinal);
        long ok = 0, typed = 0, done = 0;
        var unexpected = new List<string>();
        var dir = Directory.CreateTempSubdirectory($"deepalign-fuzz-{target.Name}-").FullName;
        try
        {
            for (long n = start; n < end; n++)
            {
                var seed = seeds[(int)(n % seeds.Length)];
                var input = n < seeds.Length ? seed : Mutator.Mutate(seed, isJson && target.Name != "jsonl" || (target.Name == "jsonl" && n % 3 == 0), (int)(n ^ (n >> 31)) * 7919 + target.Name.Length);
                using (var fs = new FileStream(current, FileMode.Create, FileAccess.Write))
                {
                    fs.Write(BitConverter.GetBytes(n));
                    fs.Write(input);
                }
                string? outcome = null;
                var thread = new Thread(() => outcome = Program.Execute(target, input, dir), 16 * 1024 * 1024) { IsBackground = true };
                thread.Start();
                if (!thread.Join(timeoutMs))
                {
                    File.WriteAllText(state, JsonSerializer.Serialize(new WorkerResult(done, ok, typed, unexpected, n, "timeout")));
                    Environment.Exit(0); // the stuck thread cannot be aborted; the parent restarts after this input
                }
                done++;
                if (outcome == "ok") ok++;
                else if (outcome!.StartsWith("typed", StringComparison.Ordinal)) typed++;
                else unexpected.Add($"#{n}: {outcome}");
                foreach (var f in Directory.GetFileSystemEntries(dir))
                {
                    if (Directory.Exists(f)) Directory.Delete(f, recursive: true);
                    else File.Delete(f);
                }
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
        File.WriteAllText(state, JsonSerializer.Serialize(new WorkerResult(done, ok, typed, unexpected, end, null)));
        return 0;
    }

    private static (long N, byte[]? Input) ReadCurrent(string path)
    {
        if (!File.Exists(path)) return (-1, null);
        var bytes = File.ReadAllBytes(path);
        return bytes.Length < 8 ? (-1, null) : (BitConverter.ToInt64(bytes, 0), bytes[8..]);
    }

    private static string Last(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Trim() ?? "";

    private static string? Arg(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
