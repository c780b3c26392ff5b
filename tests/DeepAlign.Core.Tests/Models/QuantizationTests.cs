using DeepAlign.Generation;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models.Common;
using DeepAlign.Models.Quantization;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Models;

/// <summary>The decoding kernels (float32, bfloat16, int8 weights) against exact references, and quantized models
/// against the float32 model.</summary>
public class QuantizationTests
{
    public QuantizationTests() => torch.set_num_threads(1);

    /// <summary>The kernels on odd shapes against a float64 reference over the same (dequantised) weights.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Kernels_equal_a_float64_matmul_on_odd_shapes_for_every_instruction_set(int kindIndex)
    {
        var kind = (KernelWeights)kindIndex;
        var rng = new Random(7);
        var paths = new List<string> { "best", "scalar" };
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.X86.Avx2.IsSupported) paths.Add("avx2");
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) paths.Add("wide"); // batch 1 through the four-row blocks (LinearKernels.WideInputBytes)
        foreach (var path in paths)
        foreach (var (rows, inF, outF, threads) in new[] { (1, 1, 1, 1), (1, 7, 3, 1), (3, 37, 13, 1), (5, 100, 33, 2), (2, 16, 4, 1), (4, 257, 131, 2), (1, 64, 9, 1), (2, 200, 12, 1), (1, 200, 12, 1), (1, 257, 131, 2), (1, 96, 5, 1), (1, 31, 4, 1) })
        {
            bool scalar = path == "scalar";
            var x = Enumerable.Range(0, rows * inF).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var wf = Enumerable.Range(0, outF * inF).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var scales = Enumerable.Range(0, outF).Select(_ => (float)(0.5 + rng.NextDouble())).ToArray();
            var bias = Enumerable.Range(0, outF).Select(_ => (float)rng.NextDouble()).ToArray();
            var bf = wf.Select(LinearKernels.ToBFloat16).ToArray();
            var q = wf.Select(v => (sbyte)Math.Round(v * 127)).ToArray();
            // The batch-1 bfloat16 stream (AVX-512) reads its input rounded to bfloat16 (LinearKernels.StreamBFloat16Input).
            bool roundedInput = kind == KernelWeights.BFloat16 && rows == 1 && path is "best" or "wide" && inF >= 32
                && System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
            double X(int k) => roundedInput ? LinearKernels.FromBFloat16(LinearKernels.ToBFloat16(x[k])) : x[k];
            double W(int o, int i) => kind switch
            {
                KernelWeights.Float32 => wf[o * inF + i],
                KernelWeights.BFloat16 => LinearKernels.FromBFloat16(bf[o * inF + i]),
                _ => q[o * inF + i] * (double)scales[o],
            };
            var y = new float[rows * outF];
            LinearKernels.ForceScalar = scalar;
            LinearKernels.ForceAvx2 = path == "avx2";
            LinearKernels.WideInputBytes = path == "wide" ? 0 : LinearKernels.DefaultWideInputBytes;
            try
            {
                var w = kind switch
                {
                    KernelWeights.Float32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(wf.AsSpan()).ToArray(),
                    KernelWeights.BFloat16 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(bf.AsSpan()).ToArray(),
                    _ => System.Runtime.InteropServices.MemoryMarshal.AsBytes(q.AsSpan()).ToArray(),
                };
                LinearKernels.Run(kind, w, kind == KernelWeights.Int8 ? scales : ReadOnlySpan<float>.Empty, bias, x, y, rows, inF, outF, threads);
            }
            finally
            {
                LinearKernels.ForceScalar = false;
                LinearKernels.ForceAvx2 = false;
                LinearKernels.WideInputBytes = LinearKernels.DefaultWideInputBytes;
            }
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                {
                    double expected = bias[o], magnitude = Math.Abs(bias[o]);
                    for (int i = 0; i < inF; i++) { expected += W(o, i) * X(r * inF + i); magnitude += Math.Abs(W(o, i) * X(r * inF + i)); }
                    y[r * outF + o].Should().BeApproximately((float)expected, (float)(1e-6 * magnitude + 1e-7),
                        $"{kind} {(path == "best" ? LinearKernels.InstructionSet : path)} rows {rows} in {inF} out {outF} at [{r}, {o}]");
                }
        }
    }

    /// <summary>W8A8 on odd shapes (whole and partial activation blocks, odd and even block counts), every path this CPU runs
    /// (scalar, AVX2 and AVX-512BW <c>vpmaddubsw</c>, AVX-VNNI), against an independent
    /// reference: activations quantized per block of 32 (max |x| / 127, round half to even), exact integer block sums,
    /// then the block and channel scales in float64.</summary>
    [Fact]
    public void W8A8_kernels_equal_an_exact_integer_reference_on_odd_shapes_for_both_paths()
    {
        var rng = new Random(5);
        var paths = new List<LinearKernels.W8A8Path> { LinearKernels.W8A8Path.Scalar };
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported) paths.Add(LinearKernels.W8A8Path.Avx2);
        if (System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) paths.Add(LinearKernels.W8A8Path.Avx512BW);
        if (LinearKernels.BestW8A8Path == LinearKernels.W8A8Path.AvxVnni) paths.Add(LinearKernels.W8A8Path.AvxVnni);
        foreach (var path in paths)
        foreach (var (rows, inF, outF, threads) in new[] { (1, 1, 1, 1), (1, 7, 3, 1), (3, 37, 13, 1), (5, 100, 33, 2), (2, 32, 4, 1), (4, 257, 131, 2), (1, 64, 9, 1), (2, 96, 40, 2), (1, 160, 8, 1), (3, 224, 12, 1) })
        {
            var x = Enumerable.Range(0, rows * inF).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
            var q = Enumerable.Range(0, outF * inF).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
            var u = q.Select(v => (byte)(v + 128)).ToArray();
            var scales = Enumerable.Range(0, outF).Select(_ => (float)(0.001 + rng.NextDouble() * 0.01)).ToArray();
            var bias = Enumerable.Range(0, outF).Select(_ => (float)rng.NextDouble()).ToArray();
            var y = new float[rows * outF];
            LinearKernels.ForceW8A8Path = path;
            try { LinearKernels.Run(KernelWeights.Int8W8A8, u, scales, bias, x, y, rows, inF, outF, threads); }
            finally { LinearKernels.ForceW8A8Path = null; }
            for (int r = 0; r < rows; r++)
            {
                var xq = new int[inF];
                var xs = new double[(inF + 31) / 32];
                for (int b = 0; b < xs.Length; b++)
                {
                    int i0 = b * 32, len = Math.Min(32, inF - i0);
                    float max = 0;
                    for (int i = 0; i < len; i++) max = Math.Max(max, Math.Abs(x[r * inF + i0 + i]));
                    float s = max / 127f;
                    xs[b] = s;
                    for (int i = 0; i < len; i++) xq[i0 + i] = s == 0 ? 0 : (int)Math.Clamp(Math.Round(x[r * inF + i0 + i] * (1f / s), MidpointRounding.ToEven), -127, 127);
                }
                for (int o = 0; o < outF; o++)
                {
                    double expected = 0, magnitude = 0;
                    for (int b = 0; b < xs.Length; b++)
                    {
                        long sum = 0, abs = 0;
                        for (int i = b * 32; i < Math.Min(inF, b * 32 + 32); i++) { sum += q[o * inF + i] * xq[i]; abs += Math.Abs(q[o * inF + i] * xq[i]) + 128L * Math.Abs(xq[i]); }
                        expected += xs[b] * sum;
                        magnitude += xs[b] * abs;
                    }
                    expected = expected * scales[o] + bias[o];
                    y[r * outF + o].Should().BeApproximately((float)expected, (float)(1e-6 * magnitude * scales[o] + 1e-6 * Math.Abs(expected) + 1e-7),
                        $"W8A8 {path} rows {rows} in {inF} out {outF} at [{r}, {o}]");
                }
            }
        }
    }

    /// <summary>W8A8 bound stated in docs/performance.md: max |logit error| below 3% of the fp32 logits' largest magnitude,
    /// and the prefill (weights dequantised, activations unquantized) equal to weight-only int8's.</summary>
    [Theory]
    [InlineData("llama", false)]
    [InlineData("llama", true)]
    [InlineData("qwen2", true)]
    [InlineData("qwen2", false)]
    public void W8A8_logits_stay_within_the_stated_bound_of_float32(string family, bool tied)
    {
        using var reference = Model(family, tied);
        var expected = DecodeLogits(reference);
        double scale = expected.Max(v => Math.Abs(v));
        using var w8a8 = Model(family, tied);
        w8a8.Quantize(new QuantizationOptions { Format = WeightFormat.W8A8 }).Should().Be(2 * 7 + 1);
        w8a8.WeightFormat.Should().Be(WeightFormat.W8A8);
        var logits = DecodeLogits(w8a8);
        double maxError = logits.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        maxError.Should().BeGreaterThan(0);
        maxError.Should().BeLessThan(0.03 * scale);
        using var int8 = Model(family, tied);
        int8.Quantize(new QuantizationOptions { Format = WeightFormat.Int8, MaxKernelRows = 0 });
        using var w8a8Blocks = Model(family, tied);
        w8a8Blocks.Quantize(new QuantizationOptions { Format = WeightFormat.W8A8, MaxKernelRows = 0 });
        var a = DecodeLogits(int8);
        var b = DecodeLogits(w8a8Blocks);
        a.Zip(b).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan((float)(1e-6 * scale), "both dequantise the same int8 weights above MaxKernelRows");
        FluentActions.Invoking(() => w8a8.SavePretrained(Path.Combine(Path.GetTempPath(), "never-written-w8a8"))).Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void BFloat16_rounding_is_round_to_nearest_even_as_libtorch()
    {
        var values = new[] { 1f, 1.00390625f, 1.01171875f, -3.14159f, 65504f, 1e-20f, 0f, -0f, float.MaxValue, float.PositiveInfinity };
        using var t = tensor(values).to_type(ScalarType.BFloat16).to_type(ScalarType.Float32);
        var expected = t.data<float>().ToArray();
        values.Select(v => LinearKernels.FromBFloat16(LinearKernels.ToBFloat16(v))).Should().Equal(expected);
    }

    [Fact]
    public void Vector_rounding_to_bfloat16_equals_the_scalar_rounding_on_ties_nans_and_infinities()
    {
        var rng = new Random(5);
        // Bit patterns, reinterpreted in memory (a folded float constant would quiet the signalling NaNs): ties, NaNs with
        // only low mantissa bits (which plain rounding turns into infinities), infinities, the largest finite value.
        var bits = new List<int> { 0x3F808000, 0x3F818000, unchecked((int)0xBF808000), 0x7FC00000, unchecked((int)0xFFC00000), 0x7F800000,
            unchecked((int)0xFF800000), 0x7F800001, unchecked((int)0xFF800123), 0x7F7FFFFF, 0x00000001, 0, unchecked((int)0x80000000) };
        bits.AddRange(Enumerable.Range(0, 83).Select(_ => rng.Next(int.MinValue, int.MaxValue)));
        var x = System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(bits.ToArray()).ToArray();
        var got = new ushort[x.Length];
        LinearKernels.RoundToBFloat16(x, got);
        got.Should().Equal(x.Select(LinearKernels.ToBFloat16));
        float.IsNaN(LinearKernels.FromBFloat16(got[7])).Should().BeTrue("a NaN with only low mantissa bits stays NaN");
    }

    private static DecoderOnlyCausalLM Model(string family, bool tied, ScalarType dtype = ScalarType.Float32)
    {
        var config = family == "llama"
            ? TinyModelFactory.LlamaConfig(vocabSize: 96, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 160, tieWordEmbeddings: tied)
            : TinyModelFactory.Qwen2Config(vocabSize: 96, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 160, tieWordEmbeddings: tied);
        var model = TinyModelFactory.Create(config, seed: 11, dtype: dtype);
        if (family == "qwen2")
        {
            using var noGrad = no_grad();
            using var g = new torch.Generator(3, CPU);
            foreach (var (name, p) in model.NamedParameters().Where(p => p.Name.EndsWith(".bias", StringComparison.Ordinal)))
            {
                using var b = empty(p.shape, dtype: ScalarType.Float32).normal_(0, 0.02, g);
                p.copy_(b);
            }
        }
        return model;
    }

    /// <summary>Prefill of 6 tokens then 4 cached single-token steps, the logits of every step (batch 2).</summary>
    private static float[] DecodeLogits(DecoderOnlyCausalLM model)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 5, 9, 2, 44, 17, 80, 3, 3, 61, 12, 8, 70 }, [2, 6]);
        using var cache = model.CreateCache(2, 16);
        var all = new List<Tensor> { model.Forward(ids, cache: cache, lastPositionOnly: true) };
        for (int s = 0; s < 4; s++) all.Add(model.Forward(tensor(new long[] { 10 + s, 20 + s }, [2, 1]), cache: cache));
        return cat(all, 1).data<float>().ToArray();
    }

    /// <summary>Int8 bound stated in docs/performance.md: max |logit error| below 2% of the fp32 logits' largest magnitude.</summary>
    [Theory]
    [InlineData("llama", false)]
    [InlineData("llama", true)]
    [InlineData("qwen2", true)]
    [InlineData("qwen2", false)]
    public void Int8_logits_stay_within_the_stated_bound_of_float32_and_dense_kernels_match_libtorch(string family, bool tied)
    {
        using var reference = Model(family, tied);
        var expected = DecodeLogits(reference);
        double scale = expected.Max(v => Math.Abs(v));

        using var dense = Model(family, tied);
        dense.Quantize(new QuantizationOptions { Format = WeightFormat.Dense }).Should().Be(2 * 7 + 1);
        var denseLogits = DecodeLogits(dense);
        denseLogits.Zip(expected).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan((float)(1e-5 * scale), "same float32 weights, different summation order");

        using var int8 = Model(family, tied);
        int8.Quantize();
        int8.WeightFormat.Should().Be(WeightFormat.Int8);
        var q = DecodeLogits(int8);
        double maxError = q.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        maxError.Should().BeGreaterThan(0, "int8 rounding changes the weights");
        maxError.Should().BeLessThan(0.02 * scale);
    }

    [Fact]
    public void Int8_prefill_through_dequantised_blocks_equals_the_kernel_path()
    {
        using var model = Model("llama", false);
        model.Quantize(new QuantizationOptions { MaxKernelRows = 0 });
        var blocks = DecodeLogits(model);
        using var kernels = Model("llama", false);
        kernels.Quantize(new QuantizationOptions { MaxKernelRows = 1000 });
        var viaKernels = DecodeLogits(kernels);
        double scale = blocks.Max(v => Math.Abs(v));
        blocks.Zip(viaKernels).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan((float)(1e-5 * scale));
    }

    [Fact]
    public void Bfloat16_dense_kernels_match_libtorch_bfloat16_within_its_rounding()
    {
        using var reference = Model("llama", false, ScalarType.BFloat16);
        var expected = DecodeLogits(reference);
        using var dense = Model("llama", false, ScalarType.BFloat16);
        dense.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });
        var got = DecodeLogits(dense);
        double scale = expected.Max(v => Math.Abs(v));
        got.Zip(expected).Max(p => Math.Abs(p.First - p.Second)).Should().BeLessThan((float)(0.03 * scale), "both round activations to bfloat16 between projections");
    }

    [Fact]
    public void Quantized_models_decode_with_the_generator_and_the_contrastive_decoder()
    {
        using var aligned = Model("llama", false);
        using var baseModel = Model("qwen2", false);
        using var alignedQ = Model("llama", false);
        using var baseQ = Model("qwen2", false);
        alignedQ.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });
        baseQ.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });
        var requests = new[] { new GenerationRequest(new long[] { 4, 8, 15 }), new GenerationRequest(new long[] { 16, 23, 42, 7, 1 }) };
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var plain = new DeepAlign.Generation.Generator(aligned).Generate(requests, options);
        var fast = new DeepAlign.Generation.Generator(alignedQ).Generate(requests, options);
        fast.Select(s => s.GeneratedIds).Should().BeEquivalentTo(plain.Select(s => s.GeneratedIds), o => o.WithStrictOrdering(), "float32 kernels change only the summation order");

        var contrastive = new ContrastiveDecoder(aligned, baseModel).Generate(requests, options);
        var contrastiveFast = new ContrastiveDecoder(alignedQ, baseQ).Generate(requests, options);
        contrastiveFast.Select(s => s.GeneratedIds).Should().BeEquivalentTo(contrastive.Select(s => s.GeneratedIds), o => o.WithStrictOrdering());

        using var int8 = Model("llama", false);
        int8.Quantize();
        new DeepAlign.Generation.Generator(int8).Generate(requests, options).Should().OnlyContain(s => s.GeneratedIds.Count == 6 && s.GeneratedIds.All(t => t >= 0 && t < 96));
    }

    [Fact]
    public void Misuse_is_refused_with_a_clear_message()
    {
        using var model = Model("llama", false);
        model.Quantize();
        FluentActions.Invoking(() => model.Quantize()).Should().Throw<InvalidOperationException>().WithMessage("*already converted*");
        FluentActions.Invoking(() => model.SavePretrained(Path.Combine(Path.GetTempPath(), "never-written"))).Should().Throw<InvalidOperationException>().WithMessage("*int8*");
        FluentActions.Invoking(() => new QuantizationOptions { MaxKernelRows = -1 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("MaxKernelRows");
    }
}
