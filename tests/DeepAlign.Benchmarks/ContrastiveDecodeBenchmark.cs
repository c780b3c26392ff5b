using System.Diagnostics;
using System.Globalization;
using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Testing;
using TorchSharp;

namespace DeepAlign.Benchmarks;

/// <summary>
/// <c>contrastive [--batches 1,8] [--new-tokens 32] [--prompt-length 16] [--repeats 3] [--threads N] [--small]
/// [--schedule constant|ramp|incompleteness]</c>: tokens/s of plain decoding (aligned alone, base alone) versus contrastive
/// decoding of two random ~100M-parameter Llama models (hidden 768, 12 layers, 12 heads, intermediate 2048, vocab 32000),
/// greedy, on the CPU. Reports the ratio of a contrastive step to one aligned step plus one base step (target &lt;= 1.1).
/// Per-step times exclude the prefill: t_step = (t(N new tokens) - t(1 new token)) / (N - 1).
/// </summary>
internal static class ContrastiveDecodeBenchmark
{
    public const string Help = "plain vs contrastive decoding tokens/s of a ~100M Llama pair (--batches 1,8 --new-tokens 32 --repeats 3 --threads N --small)";

    public static int Run(string[] args)
    {
        var batches = Arg(args, "--batches", "1,8").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int newTokens = int.Parse(Arg(args, "--new-tokens", "32"), CultureInfo.InvariantCulture);
        int promptLength = int.Parse(Arg(args, "--prompt-length", "16"), CultureInfo.InvariantCulture);
        int repeats = int.Parse(Arg(args, "--repeats", "3"), CultureInfo.InvariantCulture);
        string schedule = Arg(args, "--schedule", "constant");
        if (Arg(args, "--threads", "") is { Length: > 0 } t) torch.set_num_threads(int.Parse(t, CultureInfo.InvariantCulture));
        bool small = args.Contains("--small");

        var config = small
            ? TinyModelFactory.LlamaConfig(vocabSize: 1000, hiddenSize: 128, layers: 2, heads: 4, kvHeads: 4, intermediateSize: 256)
            : TinyModelFactory.LlamaConfig(vocabSize: 32000, hiddenSize: 768, layers: 12, heads: 12, kvHeads: 12, intermediateSize: 2048, maxPositionEmbeddings: 2048);
        using var aligned = TinyModelFactory.Create(config, seed: 1);
        using var baseModel = TinyModelFactory.Create(config, seed: 2);
        long parameters = aligned.NamedParameters().Sum(p => p.Parameter.numel());
        IAlphaSchedule alpha = schedule switch
        {
            "ramp" => new LinearRampAlpha(),
            "incompleteness" => new IncompletenessDrivenAlpha(),
            _ => new ConstantAlpha(1.0),
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model: llama hidden {config.HiddenSize}, layers {config.NumHiddenLayers}, heads {config.NumAttentionHeads}, intermediate {config.IntermediateSize}, vocab {config.VocabSize}: {parameters / 1e6:F1}M parameters each, float32, CPU, torch threads {torch.get_num_threads()}"));
        Console.WriteLine($"decoding: greedy, prompt {promptLength} tokens, {newTokens} new tokens, contrastive rule full, schedule {schedule}, beta_cd 0.1; median of {repeats} runs");

        using var plainAligned = new Generator(aligned);
        using var plainBase = new Generator(baseModel);
        using var contrastive = new ContrastiveDecoder(aligned, baseModel, new ContrastiveDecoderOptions { Alpha = alpha });
        var rng = new Random(7);
        foreach (int batch in batches)
        {
            var requests = Enumerable.Range(0, batch)
                .Select(_ => new GenerationRequest(Enumerable.Range(0, promptLength).Select(_ => (long)rng.Next(3, config.VocabSize)).ToArray()))
                .ToArray();
            var full = new GenerationOptions { MaxNewTokens = newTokens, StopTokenIds = Array.Empty<long>() };
            var prefillOnly = full with { MaxNewTokens = 1 };
            // Warm-up.
            plainAligned.Generate(requests, prefillOnly);
            contrastive.Generate(requests, prefillOnly);

            var times = new Dictionary<string, List<(double Full, double Prefill)>> { ["aligned"] = new(), ["base"] = new(), ["contrastive"] = new() };
            for (int r = 0; r < repeats; r++)
            {
                times["aligned"].Add((Time(() => plainAligned.Generate(requests, full)), Time(() => plainAligned.Generate(requests, prefillOnly))));
                times["base"].Add((Time(() => plainBase.Generate(requests, full)), Time(() => plainBase.Generate(requests, prefillOnly))));
                times["contrastive"].Add((Time(() => contrastive.Generate(requests, full)), Time(() => contrastive.Generate(requests, prefillOnly))));
            }
            double Step(string k) => Median(times[k].Select(x => (x.Full - x.Prefill) / (newTokens - 1)));
            double Total(string k) => Median(times[k].Select(x => x.Full));
            double sa = Step("aligned"), sb = Step("base"), sc = Step("contrastive");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"batch {batch}:"));
            foreach (var k in new[] { "aligned", "base", "contrastive" })
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {k,-12} total {Total(k):F3} s = {batch * newTokens / Total(k),8:F1} tokens/s; decode step {Step(k) * 1000,8:F2} ms = {batch / Step(k),8:F1} tokens/s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  contrastive step / (aligned step + base step) = {sc / (sa + sb):F3}; total time ratio = {Total("contrastive") / (Total("aligned") + Total("base")):F3}"));
        }
        return 0;
    }

    private static double Time(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalSeconds;
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }
}
