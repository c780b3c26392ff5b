using System.Diagnostics;
using System.Globalization;
using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Testing;
using TorchSharp;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// <c>contrastive [--batches 1,8] [--new-tokens 32] [--prompt-length 16] [--repeats 3] [--threads N] [--small]
/// [--schedule constant|ramp|incompleteness]</c>: tokens/s of plain decoding (aligned alone, base alone) versus contrastive
/// decoding of two random ~100M-parameter Llama models (hidden 768, 12 layers, 12 heads, intermediate 2048, vocab 32000),
/// greedy, on the CPU. Reports the ratio of a contrastive step to one aligned step plus one base step (target &lt;= 1.1).
/// Reports wall-clock and process CPU time (steadier on a shared machine). Per-step times exclude the prefill: t_step = (t(N new tokens) - t(1 new token)) / (N - 1).
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
            // The contrastive arithmetic alone (no forward passes): ContrastiveScoring.Step on [batch, V] log-probabilities.
            using (torch.no_grad())
            {
                using var la = torch.randn(batch, config.VocabSize).log_softmax(-1);
                using var lb = torch.randn(batch, config.VocabSize).log_softmax(-1);
                using var pos = torch.ones(batch, dtype: torch.ScalarType.Int64);
                var scoring = contrastive.Options.ToScoringOptions();
                for (int i = 0; i < 10; i++) { using var s = torch.NewDisposeScope(); ContrastiveScoring.Step(la, lb, pos, scoring); }
                var arithmetic = Time(() => { for (int i = 0; i < 200; i++) { using var s = torch.NewDisposeScope(); ContrastiveScoring.Step(la, lb, pos, scoring); } });
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"batch {batch}: contrastive scoring arithmetic alone: {arithmetic.Wall / 200 * 1000:F3} ms wall, {arithmetic.Cpu / 200 * 1000:F3} ms cpu per step"));
            }
            // Warm-up.
            plainAligned.Generate(requests, prefillOnly);
            contrastive.Generate(requests, prefillOnly);

            var generators = new Dictionary<string, Func<GenerationOptions, object>>
            {
                ["aligned"] = o => plainAligned.Generate(requests, o),
                ["base"] = o => plainBase.Generate(requests, o),
                ["contrastive"] = o => contrastive.Generate(requests, o),
            };
            // Wall-clock and process CPU time; on a shared machine the CPU time is the steadier measure of work.
            var times = generators.Keys.ToDictionary(k => k, _ => new List<(Timing Full, Timing Prefill)>());
            for (int r = 0; r < repeats; r++)
                foreach (var (k, g) in generators)
                    times[k].Add((Time(() => g(full)), Time(() => g(prefillOnly))));
            double Step(string k, bool cpu) => Median(times[k].Select(x => (x.Full.Get(cpu) - x.Prefill.Get(cpu)) / (newTokens - 1)));
            double Total(string k, bool cpu) => Median(times[k].Select(x => x.Full.Get(cpu)));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"batch {batch}:"));
            foreach (bool cpu in new[] { false, true })
            {
                string unit = cpu ? "cpu " : "wall";
                foreach (var k in generators.Keys)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {unit} {k,-12} total {Total(k, cpu),8:F3} s = {batch * newTokens / Total(k, cpu),8:F1} tokens/s; decode step {Step(k, cpu) * 1000,9:F2} ms = {batch / Step(k, cpu),8:F1} tokens/s"));
                double sa = Step("aligned", cpu), sb = Step("base", cpu), sc = Step("contrastive", cpu);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {unit} contrastive step / (aligned step + base step) = {sc / (sa + sb):F3}; total ratio = {Total("contrastive", cpu) / (Total("aligned", cpu) + Total("base", cpu)):F3}"));
            }
        }
        return 0;
    }

    private readonly record struct Timing(double Wall, double Cpu)
    {
        public double Get(bool cpu) => cpu ? Cpu : Wall;
    }

    private static Timing Time(Action action)
    {
        using var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        action();
        sw.Stop();
        process.Refresh();
        return new Timing(sw.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu0).TotalSeconds);
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
