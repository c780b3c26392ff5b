using System.Diagnostics;
using System.Globalization;
using DeepAlign.Configuration;
using DeepAlign.Data;
using DeepAlign.Generation;
using DeepAlign.Method.Contrastive;
using DeepAlign.Method.Detection;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Models.Quantization;
using DeepAlign.Testing;
using DeepAlign.Training;
using TorchSharp;
using static TorchSharp.torch;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// <c>realistic [--config qwen2.5-0.5b|llama3.2-1b] [--dir DIR] [--threads 1] [--parts load,profile,decode,tc,kernels]
/// [--batches 1,16] [--new-tokens 8] [--profile-batch 4] [--profile-length 128] [--tc-batch 2] [--tc-seq 64]</c>:
/// a random-weight pair with a real model's exact configuration in bfloat16. The pair (two checkpoints, seeds 1 and 2)
/// is written to DIR (default: $TMPDIR/deepalign-realistic/CONFIG) by a child process the first time, so this
/// process's peak RSS (VmHWM) covers loading only: load time and peak RSS over the weights' bytes, profile tokens/s
/// against the two plain forward passes, contrastive vs plain decode tokens/s per batch size (libtorch, then the CPU
/// kernels), and a LoRA targeted-completion step (time, peak RSS growth) against a LoRA SFT step on the same batch.
/// </summary>
internal static class RealisticScaleBenchmark
{
    public const string Help = "random pair with Qwen2.5-0.5B's (or Llama-3.2-1B's) exact config in bf16: load/RSS, profile, decode, LoRA TC step";

    public static CausalLMConfig Config(string name) => name switch
    {
        "qwen2.5-0.5b" => TinyModelFactory.Qwen2Config(vocabSize: 151936, hiddenSize: 896, layers: 24, heads: 14, kvHeads: 2, intermediateSize: 4864,
            tieWordEmbeddings: true, maxPositionEmbeddings: 32768) with { RopeTheta = 1000000.0, RmsNormEps = 1e-6 },
        "llama3.2-1b" => TinyModelFactory.LlamaConfig(vocabSize: 128256, hiddenSize: 2048, layers: 16, heads: 32, kvHeads: 8, intermediateSize: 8192,
            tieWordEmbeddings: true, maxPositionEmbeddings: 131072) with
        {
            RopeTheta = 500000.0, RmsNormEps = 1e-5, HeadDimOverride = 64,
            RopeScaling = new RopeScalingConfig { RopeType = "llama3", Factor = 32, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 8192 },
        },
        _ => throw new ArgumentException($"unknown --config '{name}' (qwen2.5-0.5b or llama3.2-1b)"),
    };

    public static int Run(string[] args)
    {
        string name = Arg(args, "--config", "qwen2.5-0.5b");
        var config = Config(name);
        string dir = Arg(args, "--dir", Path.Combine(Path.GetTempPath(), "deepalign-realistic", name));
        if (args.Contains("--write-only")) return Write(config, dir);
        if (!File.Exists(Path.Combine(dir, "aligned", "config.json")) || !File.Exists(Path.Combine(dir, "base", "config.json")))
        {
            var psi = new ProcessStartInfo(Environment.ProcessPath!, new[] { "realistic", "--config", name, "--dir", dir, "--write-only" }) { UseShellExecute = false };
            if (Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal)) psi.ArgumentList.Insert(0, typeof(Program).Assembly.Location);
            using var child = Process.Start(psi)!;
            child.WaitForExit();
            if (child.ExitCode != 0) return child.ExitCode;
        }
        int threads = Arg(args, "--threads", 1);
        torch.set_num_threads(threads);
        var parts = Arg(args, "--parts", "load,profile,decode,tc,kernels").Split(',').ToHashSet();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"config {name}: vocab {config.VocabSize}, hidden {config.HiddenSize}, layers {config.NumHiddenLayers}, heads {config.NumAttentionHeads}/{config.KeyValueHeads}, MLP {config.IntermediateSize}, tied {config.TieWordEmbeddings}; bfloat16; threads {threads}; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));

        double rssBefore = Status("VmRSS");
        var sw = Stopwatch.StartNew();
        using var aligned = CausalLanguageModel.FromPretrained(Path.Combine(dir, "aligned"), CPU, ScalarType.BFloat16);
        double loadSeconds = sw.Elapsed.TotalSeconds;
        double hwm = Status("VmHWM");
        long weightBytes = aligned.NamedParameters().Sum(p => p.Parameter.NumberOfElements * p.Parameter.ElementSize);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"part\": \"load\", \"params\": {aligned.ParameterCount}, \"weights_MB\": {weightBytes / 1e6:F1}, \"load_s\": {loadSeconds:F2}, \"rss_before_MB\": {rssBefore / 1e6:F1}, " +
            $"\"peak_rss_MB\": {hwm / 1e6:F1}, \"peak_rss_over_weights\": {hwm / weightBytes:F3}, \"peak_rss_growth_over_weights\": {(hwm - rssBefore) / weightBytes:F3}}}"));
        using var baseModel = CausalLanguageModel.FromPretrained(Path.Combine(dir, "base"), CPU, ScalarType.BFloat16);
        var rng = new Random(3);
        long Id() => rng.Next(3, config.VocabSize);

        if (parts.Contains("profile"))
        {
            int pb = Arg(args, "--profile-batch", 4), length = Arg(args, "--profile-length", 128);
            var batch = Enumerable.Range(0, pb).Select(i => new ProfileInput(Enumerable.Range(0, length / 4 + i).Select(_ => Id()).ToArray(),
                Enumerable.Range(0, length - length / 4 - i).Select(_ => Id()).ToArray())).ToList();
            var detector = new BaseFavoredTokenDetector(baseModel, aligned, options: new ProfileOptions { BatchSize = pb, MaxResponseTokens = length });
            detector.ProfileBatch(batch.Take(1).ToList()); // warm-up
            double forwards = Time(() => TwoForwards(aligned, baseModel, batch)), profile = Time(() => detector.ProfileBatch(batch));
            double forwards2 = Time(() => TwoForwards(aligned, baseModel, batch)), profile2 = Time(() => detector.ProfileBatch(batch));
            long tokens = batch.Sum(x => (long)x.ResponseIds.Count);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"part\": \"profile\", \"batch\": {pb}, \"length\": {length}, \"profile_tok_s\": {tokens / Math.Min(profile, profile2):F1}, \"two_forwards_s\": \"{forwards:F2}, {forwards2:F2}\", \"profile_s\": \"{profile:F2}, {profile2:F2}\", \"ratio\": \"{profile / forwards:F3}, {profile2 / forwards2:F3}\"}}"));
        }

        var batches = Arg(args, "--batches", "1,16").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int newTokens = Arg(args, "--new-tokens", 8);
        if (parts.Contains("decode")) Decode(aligned, baseModel, batches, newTokens, "libtorch bf16", rng, config);

        if (parts.Contains("tc"))
        {
            int tcBatch = Arg(args, "--tc-batch", 2), seq = Arg(args, "--tc-seq", 64);
            long[] Ids(int n) => Enumerable.Range(0, n).Select(_ => Id()).ToArray();
            var harmful = Enumerable.Range(0, 4).Select(i => new DatasetRecord { PromptIds = Ids(seq / 4), HarmfulResponseIds = Ids(seq / 2), SafeResponseIds = Ids(seq / 2), Location = $"h{i}" }).ToArray();
            var benign = Enumerable.Range(0, 16).Select(i => new DatasetRecord { PromptIds = Ids(seq / 2), ResponseIds = Ids(seq / 2), Location = $"b{i}" }).ToArray();
            foreach (var objective in new[] { AlignmentObjective.Sft, AlignmentObjective.TargetedCompletion })
            {
                using var student = CausalLanguageModel.FromPretrained(Path.Combine(dir, "aligned"), CPU, ScalarType.BFloat16);
                LoraApplier.Apply(student, new LoraOptions { Rank = 16, Dropout = 0 });
                var options = new TargetedCompletionTrainerOptions
                {
                    Objective = objective, SafetyRecoveryContexts = true,
                    Trainer = new TrainerOptions { MaxSteps = 3, MicroBatchSize = tcBatch, LearningRate = 1e-4, Seed = 0 },
                };
                var data = options.CreateData(harmful, benign, null);
                var reports = new List<TrainingProgress>();
                ResetPeak();
                double rss0 = Status("VmRSS");
                new TargetedCompletionTrainer(student, aligned, baseModel, options).Train(data, new SyncProgress(reports.Add));
                double peak = Status("VmHWM");
                var steps = reports.Zip(reports.Skip(1), (a, b) => (b.Elapsed - a.Elapsed).TotalSeconds).ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"part\": \"lora-step\", \"objective\": \"{objective}\", \"micro_batch\": {tcBatch}, \"seq\": {seq}, \"first_step_s\": {reports[0].Elapsed.TotalSeconds:F2}, \"step_s\": \"{string.Join(", ", steps.Select(s => s.ToString("F2", CultureInfo.InvariantCulture)))}\", " +
                    $"\"rss_before_MB\": {rss0 / 1e6:F0}, \"peak_rss_MB\": {peak / 1e6:F0}, \"peak_growth_MB\": {(peak - rss0) / 1e6:F0}}}"));
            }
        }

        if (parts.Contains("kernels"))
        {
            // Packing moves each weight into the arena and frees its old storage as it goes: the peak must stay near the
            // RSS before (one weight of slack), not double.
            ResetPeak();
            double rss0 = Status("VmRSS");
            var packTimer = Stopwatch.StartNew();
            aligned.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });
            baseModel.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"part\": \"pack\", \"seconds\": {packTimer.Elapsed.TotalSeconds:F2}, \"rss_before_MB\": {rss0 / 1e6:F0}, \"rss_after_MB\": {Status("VmRSS") / 1e6:F0}, \"peak_growth_MB\": {(Status("VmHWM") - rss0) / 1e6:F0}}}"));
            Decode(aligned, baseModel, batches, newTokens, "kernels bf16", rng, config);
        }
        return 0;
    }

    private static void Decode(DecoderOnlyCausalLM aligned, DecoderOnlyCausalLM baseModel, int[] batches, int newTokens, string label, Random rng, CausalLMConfig config)
    {
        using var plain = new DeepAlign.Generation.Generator(aligned);
        using var contrastive = new ContrastiveDecoder(aligned, baseModel);
        foreach (int batch in batches)
        {
            var requests = Enumerable.Range(0, batch).Select(_ => new GenerationRequest(Enumerable.Range(0, 32).Select(_ => (long)rng.Next(3, config.VocabSize)).ToArray())).ToArray();
            var full = new GenerationOptions { MaxNewTokens = newTokens, StopTokenIds = Array.Empty<long>() };
            var one = full with { MaxNewTokens = 1 };
            plain.Generate(requests, one);
            double Step(Func<GenerationOptions, object> run) => (Time(() => run(full)) - Time(() => run(one))) / (newTokens - 1);
            double p1 = Step(o => plain.Generate(requests, o)), c1 = Step(o => contrastive.Generate(requests, o));
            double p2 = Step(o => plain.Generate(requests, o)), c2 = Step(o => contrastive.Generate(requests, o));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"part\": \"decode\", \"path\": \"{label}\", \"batch\": {batch}, \"plain_tok_s\": \"{batch / p1:F2}, {batch / p2:F2}\", \"contrastive_tok_s\": \"{batch / c1:F2}, {batch / c2:F2}\", \"contrastive_over_plain_step\": \"{c1 / p1:F2}, {c2 / p2:F2}\"}}"));
        }
    }

    private static int Write(CausalLMConfig config, string dir)
    {
        foreach (var (sub, seed) in new[] { ("aligned", 1L), ("base", 2L) })
        {
            var sw = Stopwatch.StartNew();
            using var model = CausalLanguageModel.Create(config, CPU, ScalarType.BFloat16, seed: seed);
            var target = Path.Combine(dir, sub);
            model.SavePretrained(target);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {target} ({model.ParameterCount / 1e6:F1}M parameters, bfloat16) in {sw.Elapsed.TotalSeconds:F1} s"));
        }
        return 0;
    }

    private static void TwoForwards(ICausalLanguageModel a, ICausalLanguageModel b, List<ProfileInput> batch)
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

    private static double Time(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalSeconds;
    }

    private static double Time(Func<object> action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>A field of /proc/self/status in bytes (VmRSS, VmHWM).</summary>
    private static double Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return double.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return double.NaN;
    }

    /// <summary>Resets VmHWM to the current RSS (Linux: "5" into /proc/self/clear_refs).</summary>
    private static void ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }
}
