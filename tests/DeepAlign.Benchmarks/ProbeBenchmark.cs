using System.Diagnostics;
using System.Globalization;
using DeepAlign.Method;
using DeepAlign.Method.Detection;
using DeepAlign.Models;
using DeepAlign.Testing;
using static TorchSharp.torch;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// <c>probe [--sequences N] [--reference N] [--tied 0|1] [--hidden H] [--layers L] [--vocab V] [--threads N] [--prompt P] [--positions J]</c>:
/// the gradient signal probe per sequence (batched backward) against one forward + backward of the whole model over the
/// same tokens (the unit of the target: J = 64 in at most ~5 of them), and against the reference implementation (one
/// autograd backward per position) on the first <c>--reference</c> sequences, interleaved in the same run.
/// </summary>
internal static class ProbeBenchmark
{
    public const string Help = "gradient probe per sequence vs one forward+backward and vs the per-position reference (--sequences 3 --reference 1)";

    public static int Run(string[] args)
    {
        int sequences = Arg(args, "--sequences", 3), referenceCount = Arg(args, "--reference", 1), threads = Arg(args, "--threads", 1);
        int vocab = Arg(args, "--vocab", 32000), hidden = Arg(args, "--hidden", 512), layers = Arg(args, "--layers", 8);
        int prompt = Arg(args, "--prompt", 48), positions = Arg(args, "--positions", 64);
        bool tied = Arg(args, "--tied", 0) == 1;
        set_num_threads(threads);
        var config = TinyModelFactory.LlamaConfig(vocabSize: vocab, hiddenSize: hidden, layers: layers, heads: 8, kvHeads: 8,
            intermediateSize: hidden * 8 / 3, maxPositionEmbeddings: 2048, tieWordEmbeddings: tied);
        using var model = TinyModelFactory.Create(config, seed: 2);
        var rng = new Random(1);
        var inputs = Enumerable.Range(0, sequences).Select(_ => new ProfileInput(
            Enumerable.Range(0, prompt).Select(_ => (long)rng.Next(vocab)).ToArray(),
            Enumerable.Range(0, positions + 8).Select(_ => (long)rng.Next(vocab)).ToArray())).ToList();
        var options = new GradientProbeOptions { MaxPositions = positions };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model: {model.ParameterCount / 1e6:F1}M parameters (vocab {vocab}, hidden {hidden}, layers {layers}, {(tied ? "tied" : "untied")} head); prompt {prompt}, J = {positions}, last {options.LastLayers} layers + head; threads {get_num_threads()}"));

        GradientSignalProbe.Run(model, inputs.Take(1), options with { MaxPositions = 4 }); // warm-up
        ForwardBackward(model, inputs[0], positions);
        var ratios = new List<double>();
        for (int i = 0; i < sequences; i++)
        {
            var sw = Stopwatch.StartNew();
            ForwardBackward(model, inputs[i], positions);
            double fb = sw.Elapsed.TotalSeconds;
            sw.Restart();
            var batched = GradientSignalProbe.Run(model, inputs.Skip(i).Take(1), options);
            double probe = sw.Elapsed.TotalSeconds;
            string reference = "";
            if (i < referenceCount)
            {
                GradientSignalProbe.UseReference = true;
                sw.Restart();
                var slow = GradientSignalProbe.Run(model, inputs.Skip(i).Take(1), options);
                double refSeconds = sw.Elapsed.TotalSeconds;
                GradientSignalProbe.UseReference = false;
                double maxRel = batched.ByPosition.Zip(slow.ByPosition).Max(p => Math.Abs(p.First.Norm.Mean - p.Second.Norm.Mean) / p.Second.Norm.Mean);
                reference = string.Create(CultureInfo.InvariantCulture, $"; reference (one backward per position) {refSeconds:F2} s = {refSeconds / probe:F1}x the batched probe, max relative norm difference {maxRel:E1}");
            }
            ratios.Add(probe / fb);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sequence {i}: forward+backward {fb:F3} s; batched probe {probe:F3} s = {probe / fb:F2}x{reference}"));
        }
        ratios.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"probe / (forward + backward): median {ratios[ratios.Count / 2]:F2}, range {ratios[0]:F2}-{ratios[^1]:F2}"));
        return 0;
    }

    /// <summary>One training-style step without the optimizer: forward over prompt + J tokens with every parameter
    /// requiring gradients, the summed NLL of the J response tokens, backward into .grad.</summary>
    private static void ForwardBackward(ICausalLanguageModel model, ProfileInput input, int positions)
    {
        using var scope = NewDisposeScope();
        var ids = input.PromptIds.Concat(input.ResponseIds.Take(positions)).ToArray();
        int p = input.PromptIds.Count;
        var logits = model.Forward(tensor(ids[..^1], [1, ids.Length - 1]));
        var lp = PositionStatistics.LogSoftmax(logits.narrow(1, p - 1, positions).squeeze(0));
        var loss = PositionStatistics.TokenLogProbs(lp, tensor(ids[p..])).sum().neg();
        loss.backward();
        foreach (var param in model.TrainableParameters()) param.grad?.zero_();
    }
}
