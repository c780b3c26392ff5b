using DeepAlign.Models.Common;
using DeepAlign.Runtime;
using DeepAlign.Models.Quantization;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Models;

/// <summary>The fused single-token decoding step (<see cref="QuantizationOptions.FusedDecode"/>) against the libtorch
/// ops around the same kernels (<c>FusedDecode = false</c>) and against the plain float32 model: left-padded batches,
/// grouped-query attention, biases, tied and untied heads, cache growth inside a fused step.</summary>
public class KernelDecoderTests
{
    public KernelDecoderTests() => torch.set_num_threads(1);

    private static DecoderOnlyCausalLM Model(string family, bool tied, ScalarType dtype = ScalarType.Float32)
    {
        var config = family == "llama"
            ? TinyModelFactory.LlamaConfig(vocabSize: 96, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 160, tieWordEmbeddings: tied)
            : TinyModelFactory.Qwen2Config(vocabSize: 96, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 160, tieWordEmbeddings: tied);
        var model = TinyModelFactory.Create(config, seed: 11, dtype: dtype);
        using var noGrad = no_grad();
        using var g = new torch.Generator(3, CPU);
        foreach (var (name, p) in model.NamedParameters().Where(p => !p.Name.Contains("proj") && !p.Name.Contains("embed") && !p.Name.Contains("lm_head")))
        {
            // Norm weights away from 1 and biases away from 0, so a dropped or misplaced weight shows.
            using var noise = empty(p.shape, dtype: ScalarType.Float32).normal_(0, 0.1, g);
            using var shifted = name.EndsWith(".bias", StringComparison.Ordinal) ? noise.mul(Scalars.OneDouble) : noise.add(Scalars.OneDouble, Scalars.One);
            p.copy_(shifted);
        }
        return model;
    }

    private static DecoderOnlyCausalLM Converted(string family, bool tied, WeightFormat format, bool fused, ScalarType dtype = ScalarType.Float32)
    {
        var model = Model(family, tied, dtype);
        model.Quantize(new QuantizationOptions { Format = format, FusedDecode = fused });
        return model;
    }

    /// <summary>Row 0 left-padded by 2, row 1 full: prefill of 6 then <paramref name="steps"/> cached steps with the mask
    /// extended by one each step; the logits of every step (the prefill's last position first). The cache starts with
    /// room for 7 positions, so the buffers grow inside the decoding steps.</summary>
    private static float[] Decode(DecoderOnlyCausalLM model, int steps = 5, bool padded = true)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 0, 0, 2, 44, 17, 80, 3, 3, 61, 12, 8, 70 }, [2, 6]);
        var maskValues = new List<long[]> { new long[] { padded ? 0 : 1, padded ? 0 : 1, 1, 1, 1, 1 }, new long[] { 1, 1, 1, 1, 1, 1 } };
        Tensor Mask() => tensor(maskValues.SelectMany(m => m).ToArray(), [2, maskValues[0].Length]);
        using var cache = model.CreateCache(2, 7);
        var all = new List<Tensor> { model.Forward(ids, Mask(), cache, lastPositionOnly: true) };
        for (int s = 0; s < steps; s++)
        {
            for (int r = 0; r < 2; r++) maskValues[r] = maskValues[r].Append(1L).ToArray();
            all.Add(model.Forward(tensor(new long[] { 10 + s, 90 - s }, [2, 1]), Mask(), cache));
        }
        cache.Length.Should().Be(6 + steps);
        return cat(all, 1).data<float>().ToArray();
    }

    private static double MaxDiff(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));

    [Theory]
    [InlineData("llama", false, WeightFormat.Dense)]
    [InlineData("llama", true, WeightFormat.Dense)]
    [InlineData("qwen2", false, WeightFormat.Dense)]
    [InlineData("qwen2", true, WeightFormat.Int8)]
    [InlineData("llama", false, WeightFormat.Int8)]
    public void Fused_steps_equal_the_libtorch_ops_around_the_same_kernels(string family, bool tied, WeightFormat format)
    {
        using var unfused = Converted(family, tied, format, fused: false);
        unfused.FusedDecoder.Should().BeNull();
        var expected = Decode(unfused);
        using var fused = Converted(family, tied, format, fused: true);
        fused.FusedDecoder.Should().NotBeNull();
        var got = Decode(fused);
        fused.FusedDecoder!.Steps.Should().Be(5, "every single-token step of two rows runs fused");
        double scale = expected.Max(v => Math.Abs(v));
        MaxDiff(got, expected).Should().BeLessThan(2e-5 * scale, "float32 activations in both, only the summation order differs");
        // And the padded row really is masked: the same tokens without padding give other logits.
        var unpadded = Decode(unfused, padded: false);
        MaxDiff(unpadded.Take(96).ToArray(), expected.Take(96).ToArray()).Should().BeGreaterThan(1e-3 * scale);
    }

    /// <summary>Two threads decoding through one shared converted model at once (as evaluation workers whose defenses
    /// share weights do) get exactly the sequential logits: no step state is shared between threads.</summary>
    [Fact]
    public void Concurrent_fused_steps_through_one_model_equal_sequential_steps()
    {
        using var model = Converted("qwen2", false, WeightFormat.Int8, fused: true);
        var expected = Decode(model, steps: 12);
        var results = new float[4][];
        var threads = Enumerable.Range(0, 4).Select(i => new Thread(() => results[i] = Decode(model, steps: 12))).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var r in results) r.Should().Equal(expected);
        model.FusedDecoder!.Steps.Should().Be(5 * 12);
    }

    /// <summary>The scalar code (no AVX2) of the fused attention and of the kernels, float32 and bfloat16 caches.</summary>
    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Fused_steps_on_the_scalar_code_equal_the_simd_code(ScalarType dtype)
    {
        using var model = Converted("llama", false, WeightFormat.Dense, fused: true, dtype);
        var simd = Decode(model);
        float[] scalar;
        LinearKernels.ForceScalar = true;
        try { scalar = Decode(model); }
        finally { LinearKernels.ForceScalar = false; }
        MaxDiff(scalar, simd).Should().BeLessThan(2e-5 * simd.Max(v => Math.Abs(v)));
    }

    [Fact]
    public void Fused_dense_float32_steps_equal_the_plain_float32_model()
    {
        using var plain = Model("qwen2", false);
        var expected = Decode(plain);
        using var fused = Converted("qwen2", false, WeightFormat.Dense, fused: true);
        var got = Decode(fused);
        MaxDiff(got, expected).Should().BeLessThan(2e-5 * expected.Max(v => Math.Abs(v)));
    }

    /// <summary>W8A8 quantizes the float32 activations per block; the two paths compute them in another order, so a value
    /// on a rounding boundary may land one step apart: the bound is loose but far below the quantization error itself.</summary>
    [Fact]
    public void Fused_w8a8_steps_stay_next_to_the_unfused_w8a8_path()
    {
        using var unfused = Converted("llama", false, WeightFormat.W8A8, fused: false);
        var expected = Decode(unfused);
        using var fused = Converted("llama", false, WeightFormat.W8A8, fused: true);
        var got = Decode(fused);
        fused.FusedDecoder!.Steps.Should().Be(5);
        using var plain = Model("llama", false);
        var reference = Decode(plain);
        double scale = reference.Max(v => Math.Abs(v));
        double quantizationError = MaxDiff(expected, reference);
        MaxDiff(got, expected).Should().BeLessThan(Math.Max(1e-4 * scale, 0.25 * quantizationError));
    }

    /// <summary>bfloat16 weights: the fused step keeps float32 activations (the libtorch path rounds them to bfloat16 after
    /// every op), so it is at least as close to the float32 model as the libtorch bfloat16 path, and near it.</summary>
    [Fact]
    public void Fused_bfloat16_steps_stay_within_bfloat16_rounding_of_float32()
    {
        using var plain = Model("llama", false);
        var reference = Decode(plain);
        double scale = reference.Max(v => Math.Abs(v));
        using var libtorchBf16 = Converted("llama", false, WeightFormat.Dense, fused: false, ScalarType.BFloat16);
        var viaLibtorch = Decode(libtorchBf16);
        using var fused = Converted("llama", false, WeightFormat.Dense, fused: true, ScalarType.BFloat16);
        var got = Decode(fused);
        fused.FusedDecoder!.Steps.Should().Be(5);
        MaxDiff(got, reference).Should().BeLessThan(0.03 * scale);
        MaxDiff(got, viaLibtorch).Should().BeLessThan(0.03 * scale);
        MaxDiff(got, reference).Should().BeLessThan(MaxDiff(viaLibtorch, reference) * 1.5);
    }

    [Fact]
    public void Steps_with_gradients_wanted_more_rows_than_the_kernels_or_several_tokens_run_through_libtorch()
    {
        using var model = Model("llama", false);
        model.Quantize(new QuantizationOptions { Format = WeightFormat.Dense, MaxKernelRows = 1 });
        var decoder = model.FusedDecoder!;
        using var scope = NewDisposeScope();
        using (var cache = model.CreateCache(1, 8))
        {
            model.Forward(tensor(new long[] { 1, 2, 3 }, [1, 3]), cache: cache);
            model.Forward(tensor(new long[] { 4 }, [1, 1]), cache: cache).requires_grad.Should().BeTrue("gradients flow: the libtorch path ran");
            decoder.Steps.Should().Be(0);
            using (no_grad()) model.Forward(tensor(new long[] { 5 }, [1, 1]), cache: cache);
            decoder.Steps.Should().Be(1);
            cache.Length.Should().Be(5);
        }
        using (no_grad())
        using (var cache = model.CreateCache(2, 8))
        {
            model.Forward(tensor(new long[] { 1, 2 }, [2, 1]), cache: cache);
            decoder.Steps.Should().Be(1, "two rows exceed MaxKernelRows = 1");
        }
    }

    [Fact]
    public void A_token_id_outside_the_vocabulary_is_refused()
    {
        using var model = Converted("llama", false, WeightFormat.Int8, fused: true);
        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, 4);
        using var scope = NewDisposeScope();
        model.Forward(tensor(new long[] { 1, 2 }, [1, 2]), cache: cache);
        FluentActions.Invoking(() => model.Forward(tensor(new long[] { 96 }, [1, 1]), cache: cache)).Should().Throw<ArgumentOutOfRangeException>();
        cache.Length.Should().Be(2, "nothing was written");
    }
}
