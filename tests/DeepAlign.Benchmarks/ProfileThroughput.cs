using System.Diagnostics;
using System.Globalization;
using DeepAlign.Method.Detection;
using DeepAlign.Testing;
using static TorchSharp.torch;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// <c>profile [--batches N] [--batch-size B] [--length T] [--vocab V] [--hidden H] [--layers L] [--threads N] [--reps R] [--probe N]</c>:
/// times <see cref="BaseFavoredTokenDetector.ProfileBatch"/> against the two models' plain forward passes on the same
/// left-padded batches and prints the ratio (target: at most 1.25).
/// </summary>
internal static class ProfileThroughput
{
    public static int Run(string[] args)
    {
        int batches = Arg(args, "--batches", 3), batchSize = Arg(args, "--batch-size", 8), length = Arg(args, "--length", 256);
        int vocab = Arg(args, "--vocab", 32000), hidden = Arg(args, "--hidden", 512), layers = Arg(args, "--layers", 8);
        int threads = Arg(args, "--threads", 0);
        if (threads > 0) set_num_threads(threads);
        var config = TinyModelFactory.LlamaConfig(vocabSize: vocab, hiddenSize: hidden, layers: layers, heads: 8, kvHeads: 8,
            intermediateSize: hidden * 8 / 3, maxPositionEmbeddings: 2048);
        using var b = TinyModelFactory.Create(config, seed: 1);
        using var a = TinyModelFactory.Create(config, seed: 2);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"models: {b.ParameterCount / 1e6:F1}M parameters each (vocab {vocab}, hidden {hidden}, layers {layers}); batch {batchSize} x {length} tokens; threads {get_num_threads()}"));
        var rng = new Random(1);
        var data = Enumerable.Range(0, batches).Select(_ => Enumerable.Range(0, batchSize).Select(_ =>
        {
            int prompt = rng.Next(length / 8, length / 4);         // different prompt lengths: left padding
            int response = length - prompt - rng.Next(0, length / 8);
            return new ProfileInput(Enumerable.Range(0, prompt).Select(_ => (long)rng.Next(vocab)).ToArray(),
                Enumerable.Range(0, response).Select(_ => (long)rng.Next(vocab)).ToArray());
        }).ToList()).ToList();
        var detector = new BaseFavoredTokenDetector(b, a, options: new ProfileOptions { BatchSize = batchSize, MaxResponseTokens = length });

        // Warm-up.
        Forwards(a, b, data[0]);
        detector.ProfileBatch(data[0]);
        double forwardSeconds = 0, profileSeconds = 0;
        var phases = new Dictionary<string, double>();
        BaseFavoredTokenDetector.PhaseTimer = (name, seconds) => phases[name] = phases.GetValueOrDefault(name) + seconds;
        // The machine is shared: each batch is timed `reps` times, alternating reference and profile, and the fastest
        // run of each is kept (the least disturbed measurement).
        int reps = Arg(args, "--reps", 3);
        for (int i = 0; i < batches; i++)
        {
            double bestForward = double.MaxValue, bestProfile = double.MaxValue;
            for (int rep = 0; rep < reps; rep++)
            {
                var sw = Stopwatch.StartNew();
                Forwards(a, b, data[i]);
                bestForward = Math.Min(bestForward, sw.Elapsed.TotalSeconds);
                sw.Restart();
                detector.ProfileBatch(data[i]);
                bestProfile = Math.Min(bestProfile, sw.Elapsed.TotalSeconds);
            }
            forwardSeconds += bestForward;
            profileSeconds += bestProfile;
        }
        BaseFavoredTokenDetector.PhaseTimer = null;
        Console.WriteLine("profile phases (mean over all runs, s/batch): " + string.Join(", ", phases.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value / (batches * reps):F3}"))));
        long tokens = data.Sum(d => d.Sum(x => (long)x.ResponseIds.Count));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fastest of {reps}: two forward passes {forwardSeconds / batches:F3} s/batch; profile: {profileSeconds / batches:F3} s/batch ({tokens / profileSeconds:F0} response tokens/s); ratio {profileSeconds / forwardSeconds:F3}"));
        int probe = Arg(args, "--probe", 0);
        if (probe > 0)
        {
            var inputs = data.SelectMany(d => d).Take(probe).ToList();
            var sw = Stopwatch.StartNew();
            var result = GradientSignalProbe.Run(a, inputs);
            double perSequence = sw.Elapsed.TotalSeconds / inputs.Count;
            sw.Restart();
            using (no_grad()) a.Forward(tensor(inputs[0].PromptIds.Concat(inputs[0].ResponseIds.Take(64)).ToArray(), [1, inputs[0].PromptIds.Count + 64])).Dispose();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gradient probe (J = 64, last 3 layers + head, {result.ParameterNames.Count} tensors): {perSequence:F3} s/sequence; one no-grad forward of the same tokens {sw.Elapsed.TotalSeconds:F3} s"));
        }
        return 0;
    }

    /// <summary>The reference: each model's forward over the same left-padded batch (the last token is only a target).</summary>
    private static void Forwards(DeepAlign.Models.ICausalLanguageModel a, DeepAlign.Models.ICausalLanguageModel b, List<ProfileInput> batch)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        int width = batch.Max(x => x.PromptIds.Count + x.ResponseIds.Count);
        var ids = new long[batch.Count * width];
        var mask = new long[batch.Count * width];
        for (int r = 0; r < batch.Count; r++)
        {
            var seq = batch[r].PromptIds.Concat(batch[r].ResponseIds).ToArray();
            int offset = width - seq.Length;
            for (int k = 0; k < seq.Length; k++) { ids[r * width + offset + k] = seq[k]; mask[r * width + offset + k] = 1; }
        }
        var x = tensor(ids, [batch.Count, width]).narrow(1, 0, width - 1);
        var m = tensor(mask, [batch.Count, width]).narrow(1, 0, width - 1);
        a.Forward(x, m).Dispose();
        b.Forward(x, m).Dispose();
    }
}
