using System.Diagnostics;
using System.Globalization;
using DeepAlign.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Benchmarks;

/// <summary>
/// The generator's host sampler (<see cref="TokenSampler.Sample(Tensor, GenerationOptions, IReadOnlyList{double})"/>: one
/// copy of the scores, then per-row C#) against the tensor-op path over the same scores
/// (<see cref="LogitsProcessing.Process(Tensor, GenerationOptions)"/> then the inverse-CDF draw on tensors, as a
/// PyTorch-style sampler does it), for several settings, in the same run. Scores are log-softmax of scaled Gaussian
/// logits (scale 8 gives a peaked, trained-model-like row).
/// </summary>
internal static class SamplerBenchmark
{
    public const string Help = "[--rows 1024] [--vocab 598] [--scale 8] [--repeats 30]: host sampler vs tensor-op sampling, us per row and ratio";

    public static int Run(string[] args)
    {
        int rows = BenchmarkArgs.Arg(args, "--rows", 1024), vocab = BenchmarkArgs.Arg(args, "--vocab", 598), repeats = BenchmarkArgs.Arg(args, "--repeats", 30);
        double scale = double.Parse(BenchmarkArgs.Arg(args, "--scale", "8"), CultureInfo.InvariantCulture);
        torch.set_num_threads(1);
        torch.manual_seed(7);
        using var scores = randn(rows, vocab).mul(scale).log_softmax(-1);
        var uniforms = Enumerable.Range(0, rows).Select(i => TokenSampler.Uniform(11, i)).ToArray();
        var settings = new (string Name, GenerationOptions Options)[]
        {
            ("temperature 1", new() { DoSample = true }),
            ("temperature 0.7", new() { DoSample = true, Temperature = 0.7 }),
            ("top-p 0.6, temperature 0.9", new() { DoSample = true, TopP = 0.6, Temperature = 0.9 }),
            ("top-k 50", new() { DoSample = true, TopK = 50 }),
        };
        Console.WriteLine($"rows {rows}, vocab {vocab}, scale {scale}, 1 thread, median of {repeats}");
        Console.WriteLine("| setting | host sampler (us/row) | tensor ops (us/row) | speed-up |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, options) in settings)
        {
            double host = Median(repeats, () => { using var ids = TokenSampler.Sample(scores, options, uniforms); });
            double tensors = Median(repeats, () =>
            {
                using var processed = LogitsProcessing.Process(scores, options);
                using var ids = TokenSampler.Sample(processed, uniforms);
                ids.data<long>().ToArray();
            });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {host * 1e6 / rows:0.00} | {tensors * 1e6 / rows:0.00} | {tensors / host:0.0}x |"));
        }
        return 0;
    }

    private static double Median(int repeats, Action run)
    {
        for (int i = 0; i < 5; i++) run(); // warm-up (JIT tiers)
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }
}
