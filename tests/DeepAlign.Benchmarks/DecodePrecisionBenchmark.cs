using System.Diagnostics;
using System.Globalization;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Quantization;
using DeepAlign.Testing;
using TorchSharp;
using static TorchSharp.torch;

using static DeepAlign.Benchmarks.BenchmarkArgs;

namespace DeepAlign.Benchmarks;

/// <summary>
/// <c>decode-precision [--config qwen2.5-0.5b|llama3.2-1b] [--threads 1] [--batch 1] [--prompt 128] [--decode 64] [--repeats 3] [--variants fp32,fp32-kernels,bf16,bf16-kernels,int8,w8a8 (suffixes -unfused: FusedDecode = false; -loose: PackWeights = false; -pf / -nopf: software prefetch in the batch-1 stream on / off; -x32: the batch-1 bf16 stream reads float32 input; -wideN (last): batch-1 rows with more than N input bytes in four-row blocks; repeat a variant to interleave an A/B)] [--profile 1] [--four-rows 1] [--save DIR]</c>:
/// decode tokens/s of the ~125M Llama of <c>model-throughput</c> (seed 0) per weight format, the logit error of each
/// against float32 over the same decode steps, weight bytes streamed per token and the share of the measured
/// single-thread read bandwidth that represents. <c>--save DIR</c> writes the float32 model as a Hugging Face folder
/// first (the input of tests/scripts/reference/write_gguf.py for the llama.cpp peer).
/// </summary>
internal static class DecodePrecisionBenchmark
{
    /// <summary>--profile 1: time the kernel projections (Stopwatch around each, which itself costs a little).</summary>
    private static bool Profile;

    public const string Help = "decode tok/s per weight format (fp32, bf16, kernels, int8) + logit error vs fp32 + bandwidth use";

    public static int Run(string[] args)
    {
        int threads = Arg(args, "--threads", 1), batch = Arg(args, "--batch", 1), prompt = Arg(args, "--prompt", 128);
        int decode = Arg(args, "--decode", 64), repeats = Arg(args, "--repeats", 3);
        var variants = Arg(args, "--variants", "fp32,fp32-kernels,bf16,bf16-kernels,int8,w8a8").Split(',');
        Profile = Arg(args, "--profile", 0) == 1;
        LinearKernels.ForceFourRows = Arg(args, "--four-rows", 0) == 1; // batch 1 through the four-row blocks (the A/B of round 4)
        torch.set_num_threads(threads);
        var config = Arg(args, "--config", "") is { Length: > 0 } realistic ? RealisticScaleBenchmark.Config(realistic)
            : TinyModelFactory.LlamaConfig(vocabSize: 32000, hiddenSize: 768, layers: 12, heads: 12, kvHeads: 4, intermediateSize: 2048, maxPositionEmbeddings: 2048);
        if (Arg(args, "--save", "") is { Length: > 0 } save)
        {
            using var m = CausalLanguageModel.Create(config, CPU, ScalarType.Float32, seed: 0);
            m.SavePretrained(save);
            Console.WriteLine($"saved the float32 model to {save}");
        }
        double bandwidth = LinearKernels.MeasureReadBandwidth();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"kernels: {LinearKernels.InstructionSet}, W8A8 {LinearKernels.BestW8A8Path}; measured single-thread read bandwidth {bandwidth:F1} GB/s; threads {threads}; batch {batch}; prompt {prompt}; decode {decode}"));
        var rng = new Random(0);
        var ids = Enumerable.Range(0, batch * prompt).Select(_ => (long)rng.Next(3, config.VocabSize)).ToArray();
        float[]? referenceLogits = null;
        foreach (var variant in variants)
        {
            using var model = Build(config, variant);
            var (rates, cpuRates, logits, projectionShare, attentionShare) = Measure(model, ids, batch, prompt, decode, repeats);
            referenceLogits ??= variant == "fp32" ? logits : null;
            string error = "";
            if (referenceLogits is not null && variant != "fp32")
            {
                double scale = referenceLogits.Max(v => Math.Abs(v)), maxAbs = 0, sumSq = 0;
                for (int i = 0; i < logits.Length; i++) { double d = logits[i] - referenceLogits[i]; maxAbs = Math.Max(maxAbs, Math.Abs(d)); sumSq += d * d; }
                int agree = Top1Agreement(logits, referenceLogits, config.VocabSize);
                error = string.Create(CultureInfo.InvariantCulture,
                    $", \"max_abs_logit_error\": {maxAbs:G3}, \"max_abs_error_over_max_logit\": {maxAbs / scale:G3}, \"rms_logit_error\": {Math.Sqrt(sumSq / logits.Length):G3}, \"top1_agreement\": \"{agree}/{logits.Length / config.VocabSize}\"");
            }
            rates.Sort();
            cpuRates.Sort();
            int argmax = 0;
            for (int v = 1; v < config.VocabSize; v++) if (logits[v] > logits[argmax]) argmax = v;
            error += string.Create(CultureInfo.InvariantCulture, $", \"prefill_logit0\": {logits[0]:G6}, \"prefill_argmax\": {argmax}");
            long bytes = model.StreamedWeightBytesPerToken();
            double median = rates[rates.Count / 2];
            double stepsPerSecond = median / batch;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"impl\": \"DeepAlign\", \"variant\": \"{variant}\", \"batch\": {batch}, \"decode_tok_s\": {median:F1}, \"range\": \"{rates[0]:F1}-{rates[^1]:F1}\", \"cpu_tok_s\": {cpuRates[cpuRates.Count / 2]:F1}, " +
                $"\"weight_MB_per_step\": {bytes / 1e6:F1}, \"weight_GB_s\": {bytes * stepsPerSecond / 1e9:F2}, \"bandwidth_share\": {bytes * stepsPerSecond / 1e9 / bandwidth:F2}, \"kernel_projection_share_of_step\": {projectionShare:F2}, \"fused_attention_share_of_step\": {attentionShare:F2}{error}}}"));
        }
        return 0;
    }

    private static DecoderOnlyCausalLM Build(DeepAlign.Configuration.CausalLMConfig config, string variant)
    {
        var dtype = variant.StartsWith("bf16", StringComparison.Ordinal) ? ScalarType.BFloat16 : ScalarType.Float32;
        var model = CausalLanguageModel.Create(config, CPU, dtype, seed: 0);
        string name = variant;
        LinearKernels.StreamPrefetch = Strip(ref name, "-nopf") ? false : Strip(ref name, "-pf") ? true : null;
        LinearKernels.StreamBFloat16Input = !Strip(ref name, "-x32");
        LinearKernels.WideInputBytes = LinearKernels.DefaultWideInputBytes;
        int wide = name.IndexOf("-wide", StringComparison.Ordinal);
        if (wide >= 0) { LinearKernels.WideInputBytes = long.Parse(name[(wide + 5)..], CultureInfo.InvariantCulture); name = name[..wide]; }
        bool loose = Strip(ref name, "-loose"), fused = !Strip(ref name, "-unfused");
        if (name.EndsWith("-kernels", StringComparison.Ordinal)) model.Quantize(new QuantizationOptions { Format = WeightFormat.Dense, FusedDecode = fused, PackWeights = !loose });
        else if (name == "int8") model.Quantize(new QuantizationOptions { Format = WeightFormat.Int8, FusedDecode = fused, PackWeights = !loose });
        else if (name == "w8a8") model.Quantize(new QuantizationOptions { Format = WeightFormat.W8A8, FusedDecode = fused, PackWeights = !loose });
        else if (name is not ("fp32" or "bf16")) throw new ArgumentException($"unknown variant '{variant}'");
        return model;
    }

    private static bool Strip(ref string name, string suffix)
    {
        if (!name.EndsWith(suffix, StringComparison.Ordinal)) return false;
        name = name[..^suffix.Length];
        return true;
    }

    private static (List<double> Rates, List<double> CpuRates, float[] Logits, double ProjectionShare, double AttentionShare) Measure(DecoderOnlyCausalLM model, long[] ids, int batch, int prompt, int decode, int repeats)
    {
        using var noGrad = no_grad();
        using var input = tensor(ids, dtype: ScalarType.Int64).reshape(batch, prompt);
        var rates = new List<double>();
        var cpuRates = new List<double>();
        float[] logits = Array.Empty<float>();
        long projectionTicks = 0, attentionTicks = 0, stepTicks = 0;
        for (int r = 0; r <= repeats; r++) // round 0 is warm-up and records the logits
        {
            using var cache = model.CreateCache(batch, prompt + decode);
            var collected = new List<float[]>();
            using (var first = model.Forward(input, cache: cache, lastPositionOnly: true)) if (r == 0) collected.Add(first.data<float>().ToArray());
            // Teacher-forced fixed tokens, so every variant decodes the same sequence and logits compare position by position.
            KernelLinear.ProfileTicks = 0;
            KernelDecoder.AttentionTicks = 0;
            KernelLinear.Profiling = r > 0 && Profile;
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int s = 0; s < decode; s++)
            {
                using var scope = NewDisposeScope();
                var next = full(new long[] { batch, 1 }, (long)(7 + s), dtype: ScalarType.Int64);
                var step = model.Forward(next, cache: cache);
                if (r == 0) collected.Add(step.data<float>().ToArray());
                else step.argmax(-1).data<long>();
            }
            double seconds = sw.Elapsed.TotalSeconds;
            double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            KernelLinear.Profiling = false;
            if (r > 0) { projectionTicks += KernelLinear.ProfileTicks; attentionTicks += KernelDecoder.AttentionTicks; stepTicks += sw.ElapsedTicks; }
            if (r == 0) { logits = collected.SelectMany(x => x).ToArray(); continue; }
            rates.Add(batch * decode / seconds);
            cpuRates.Add(batch * decode / cpuSeconds);
        }
        return (rates, cpuRates, logits, stepTicks == 0 ? 0 : (double)projectionTicks / stepTicks, stepTicks == 0 ? 0 : (double)attentionTicks / stepTicks);
    }

    private static int Top1Agreement(float[] a, float[] b, int vocab)
    {
        int agree = 0;
        for (int row = 0; row < a.Length / vocab; row++)
        {
            int ia = 0, ib = 0;
            for (int v = 1; v < vocab; v++)
            {
                if (a[row * vocab + v] > a[row * vocab + ia]) ia = v;
                if (b[row * vocab + v] > b[row * vocab + ib]) ib = v;
            }
            if (ia == ib) agree++;
        }
        return agree;
    }
}
