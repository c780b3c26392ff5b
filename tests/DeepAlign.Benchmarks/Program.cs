namespace DeepAlign.Benchmarks;

/// <summary>
/// Benchmark runner: <c>DeepAlign.Benchmarks &lt;mode&gt; [options]</c>. Each mode is one class with a
/// <c>Run(string[] args)</c> method, registered in <see cref="Modes"/> by one line.
/// </summary>
internal static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Modes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["model-throughput"] = (ModelThroughputBenchmark.Help, ModelThroughputBenchmark.Run),
        ["tokenizer"] = (TokenizerBenchmark.Help, TokenizerBenchmark.Run),
        ["train-throughput"] = (TrainThroughputBenchmark.Help, TrainThroughputBenchmark.Run),
        ["contrastive"] = (ContrastiveDecodeBenchmark.Help, ContrastiveDecodeBenchmark.Run),
        ["targeted-cost"] = (TargetedCompletionCostBenchmark.Help, TargetedCompletionCostBenchmark.Run),
        ["sampler"] = (SamplerBenchmark.Help, SamplerBenchmark.Run),
        ["decode-precision"] = (DecodePrecisionBenchmark.Help, DecodePrecisionBenchmark.Run),
        ["kernels"] = (KernelBenchmark.Help, KernelBenchmark.Run),
        ["realistic"] = (RealisticScaleBenchmark.Help, RealisticScaleBenchmark.Run),
        ["probe"] = (ProbeBenchmark.Help, ProbeBenchmark.Run),
        ["profile"] = ("incompleteness profile vs two forward passes (ratio; target <= 1.25)", ProfileThroughput.Run),
    };

    private static int Main(string[] args)
    {
        if (args.Length == 0 || !Modes.TryGetValue(args[0], out var mode))
        {
            Console.Error.WriteLine("usage: DeepAlign.Benchmarks <mode> [options]; modes:");
            foreach (var (name, m) in Modes) Console.Error.WriteLine($"  {name}: {m.Help}");
            return 2;
        }
        return mode.Run(args[1..]);
    }
}
