using System.Diagnostics;
using System.Text.Json;
using DeepAlign.Text;

namespace DeepAlign.Benchmarks;

/// <summary>
/// Encoding throughput of <see cref="HfTokenizer"/> on a text file (1 MB of English in
/// tests/scripts/text/bench-tokenizer.sh). Cold = first encode with a fresh tokenizer; warm = median of 3 more.
/// </summary>
internal static class TokenizerBenchmark
{
    public const string Help = "--model DIR --text FILE [--name NAME]: encode FILE, print tokens/s (cold and warm) as JSON";

    public static int Run(string[] args)
    {
        string? model = null, textFile = null, name = null;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--model": model = args[i + 1]; break;
                case "--text": textFile = args[i + 1]; break;
                case "--name": name = args[i + 1]; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        if (model is null || textFile is null) { Console.Error.WriteLine(Help); return 2; }
        var text = File.ReadAllText(textFile);
        var loadWatch = Stopwatch.StartNew();
        var tok = HfTokenizer.FromPretrained(model);
        var loadMs = loadWatch.Elapsed.TotalMilliseconds;
        var sw = Stopwatch.StartNew();
        var count = tok.Encode(text).Count;
        var cold = sw.Elapsed.TotalMilliseconds;
        var warm = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            sw.Restart();
            tok.Encode(text);
            warm.Add(sw.Elapsed.TotalMilliseconds);
        }
        warm.Sort();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            engine = "C# DeepAlign HfTokenizer",
            tokenizer = name ?? model,
            bytes = System.Text.Encoding.UTF8.GetByteCount(text),
            tokens = count,
            loadMs = Math.Round(loadMs),
            coldMs = Math.Round(cold),
            warmMs = Math.Round(warm[1]),
            coldTokensPerSec = Math.Round(count / (cold / 1000)),
            warmTokensPerSec = Math.Round(count / (warm[1] / 1000)),
        }));
        return 0;
    }
}
