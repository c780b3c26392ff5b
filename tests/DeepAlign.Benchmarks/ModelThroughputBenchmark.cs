using System.Diagnostics;
using System.Globalization;
using DeepAlign.Models;
using DeepAlign.Testing;
using TorchSharp;
using static TorchSharp.torch;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// Prefill and decode tokens/s of a ~125M-parameter Llama (hidden 768, 12 layers, 12 heads / 4 kv heads, MLP 2048,
/// vocab 32000) with random weights, float32 on CPU. The PyTorch peer is tests/scripts/reference/bench_reference.py
/// (same shapes, same thread count). Usage:
/// <c>DeepAlign.Benchmarks model-throughput [--threads N] [--prompt T] [--decode N] [--batch B] [--repeats R]</c>.
/// </summary>
internal static class ModelThroughputBenchmark
{
    public const string Help = "prefill/decode tokens/s of a ~125M Llama (--threads 1 --prompt 128 --decode 64 --batch 1 --repeats 3)";

    public static int Run(string[] args)
    {
        int threads = Arg(args, "--threads", 1), prompt = Arg(args, "--prompt", 128), decode = Arg(args, "--decode", 64);
        int batch = Arg(args, "--batch", 1), repeats = Arg(args, "--repeats", 3);
        torch.set_num_threads(threads);
        var config = TinyModelFactory.LlamaConfig(vocabSize: 32000, hiddenSize: 768, layers: 12, heads: 12, kvHeads: 4,
            intermediateSize: 2048, maxPositionEmbeddings: 2048);
        using var model = CausalLanguageModel.Create(config, CPU, ScalarType.Float32, seed: 0);
        using var noGrad = no_grad();
        var gen = new Random(0);
        var ids = Enumerable.Range(0, batch * prompt).Select(_ => (long)gen.Next(3, config.VocabSize)).ToArray();
        using var input = tensor(ids, dtype: ScalarType.Int64).reshape(batch, prompt);
        using var next = full(new long[] { batch, 1 }, 7L, dtype: ScalarType.Int64);

        var prefillRates = new List<double>();
        var decodeRates = new List<double>();
        for (int r = 0; r <= repeats; r++) // first round is warm-up
        {
            using var cache = model.CreateCache(batch, prompt + decode);
            var sw = Stopwatch.StartNew();
            using (var logits = model.Forward(input, cache: cache, lastPositionOnly: true)) logits.data<float>();
            double prefillSeconds = sw.Elapsed.TotalSeconds;
            sw.Restart();
            for (int s = 0; s < decode; s++)
            {
                using var scope = NewDisposeScope();
                var step = model.Forward(next, cache: cache);
                step.argmax(-1).data<long>();
            }
            double decodeSeconds = sw.Elapsed.TotalSeconds;
            if (r == 0) continue;
            prefillRates.Add(batch * prompt / prefillSeconds);
            decodeRates.Add(batch * decode / decodeSeconds);
        }
        prefillRates.Sort();
        decodeRates.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"impl\": \"DeepAlign/TorchSharp\", \"params\": {model.ParameterCount}, \"threads\": {threads}, \"batch\": {batch}, \"prompt\": {prompt}, \"decode\": {decode}, " +
            $"\"prefill_tok_s\": {prefillRates[prefillRates.Count / 2]:F1}, \"decode_tok_s\": {decodeRates[decodeRates.Count / 2]:F1}}}"));
        return 0;
    }
}
