using DeepAlign.Models.Common;
using DeepAlign.Models.Quantization;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Models;

/// <summary><see cref="QuantizationOptions.PackWeights"/>: the converted weights move into one buffer in decode order
/// (<see cref="WeightArena"/>) without changing a single logit, the dense parameters keep their values and names, and
/// the buffer is advised for huge pages on Linux.</summary>
public class WeightPackingTests
{
    public WeightPackingTests() => torch.set_num_threads(1);

    private static DecoderOnlyCausalLM Model(string family, bool tied, ScalarType dtype)
    {
        var config = family == "llama"
            ? TinyModelFactory.LlamaConfig(vocabSize: 96, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 160, tieWordEmbeddings: tied)
            : TinyModelFactory.Qwen2Config(vocabSize: 96, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 160, tieWordEmbeddings: tied);
        return TinyModelFactory.Create(config, seed: 11, dtype: dtype);
    }

    /// <summary>Prefill of 6 (libtorch's matmul over the parameters) then 4 cached steps (the kernels), batch 1 and 2.</summary>
    private static float[] DecodeLogits(DecoderOnlyCausalLM model, int batch)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 5, 9, 2, 44, 17, 80, 3, 3, 61, 12, 8, 70 }.Take(6 * batch).ToArray(), [batch, 6]);
        using var cache = model.CreateCache(batch, 16);
        var all = new List<Tensor> { model.Forward(ids, cache: cache, lastPositionOnly: true) };
        for (int s = 0; s < 4; s++) all.Add(model.Forward(tensor(new long[] { 10 + s, 20 + s }.Take(batch).ToArray(), [batch, 1]), cache: cache));
        return cat(all, 1).to_type(ScalarType.Float32).data<float>().ToArray();
    }

    [Theory]
    [InlineData("llama", false, WeightFormat.Dense, ScalarType.Float32)]
    [InlineData("llama", true, WeightFormat.Dense, ScalarType.BFloat16)]
    [InlineData("qwen2", true, WeightFormat.Dense, ScalarType.Float32)]
    [InlineData("qwen2", false, WeightFormat.Int8, ScalarType.Float32)]
    [InlineData("llama", true, WeightFormat.Int8, ScalarType.BFloat16)]
    [InlineData("qwen2", true, WeightFormat.W8A8, ScalarType.Float32)]
    [InlineData("llama", false, WeightFormat.W8A8, ScalarType.Float32)]
    public void Packed_weights_give_exactly_the_logits_of_unpacked_ones(string family, bool tied, WeightFormat format, ScalarType dtype)
    {
        foreach (int batch in new[] { 1, 2 })
        foreach (bool fused in new[] { true, false })
        {
            using var loose = Model(family, tied, dtype);
            loose.Quantize(new QuantizationOptions { Format = format, FusedDecode = fused, PackWeights = false });
            using var packed = Model(family, tied, dtype);
            packed.Quantize(new QuantizationOptions { Format = format, FusedDecode = fused, PackWeights = true });
            DecodeLogits(packed, batch).Should().Equal(DecodeLogits(loose, batch), $"batch {batch}, fused {fused}");
        }
    }

    [Theory]
    [InlineData(true, ScalarType.BFloat16)]
    [InlineData(false, ScalarType.Float32)]
    public void Dense_parameters_move_into_one_buffer_in_decode_order_and_keep_their_values(bool tied, ScalarType dtype)
    {
        using var model = Model("qwen2", tied, dtype);
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.detach().clone());
        model.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });

        var after = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        after.Keys.Should().BeEquivalentTo(before.Keys, "checkpoint names stay");
        foreach (var (name, value) in before)
            after[name].equal(value).all().item<bool>().Should().BeTrue($"{name} keeps its values");

        var order = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            order.AddRange(new[] { "q_proj", "k_proj", "v_proj", "o_proj" }.Select(p => $"model.layers.{i}.self_attn.{p}.weight"));
            order.AddRange(new[] { "gate_proj", "up_proj", "down_proj" }.Select(p => $"model.layers.{i}.mlp.{p}.weight"));
        }
        order.Add(tied ? "model.embed_tokens.weight" : "lm_head.weight");
        long expected = TensorData.Address(after[order[0]]);
        expected.Should().Be(expected / WeightArena.AlignmentBytes * WeightArena.AlignmentBytes, "every weight starts on a cache line");
        foreach (var name in order)
        {
            var p = after[name];
            (TensorData.Address(p)).Should().Be(expected, $"{name} follows the previous weight");
            expected += WeightArena.Padded(p.NumberOfElements, p.ElementSize) * p.ElementSize;
        }
        foreach (var t in before.Values) t.Dispose();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_packed_dense_model_saves_a_checkpoint_that_loads_back_to_the_same_logits(bool tied)
    {
        using var dir = new DeepAlign.Tests.Checkpoints.TempDir();
        using var original = Model("qwen2", tied, ScalarType.Float32);
        var expected = DecodeLogits(original, 1);
        original.Quantize(new QuantizationOptions { Format = WeightFormat.Dense });
        original.SavePretrained(dir.Path);
        using var reloaded = DeepAlign.Models.CausalLanguageModel.FromPretrained(dir.Path, CPU, ScalarType.Float32);
        DecodeLogits(reloaded, 1).Should().Equal(expected, "the packed parameters are the model's own weights");
    }

    [Fact]
    public void Dense_weights_of_mixed_dtypes_are_left_where_they_are()
    {
        using var model = Model("llama", tied: false, ScalarType.Float32);
        model.NamedLinearLayers().First().Module.to(ScalarType.BFloat16); // layer 0's q_proj
        model.Quantize(new QuantizationOptions { Format = WeightFormat.Dense, FusedDecode = false });
        var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var q = parameters["model.layers.0.self_attn.q_proj.weight"];
        var k = parameters["model.layers.0.self_attn.k_proj.weight"];
        q.dtype.Should().Be(ScalarType.BFloat16, "one buffer has one dtype; packing must not convert a weight");
        k.dtype.Should().Be(ScalarType.Float32);
        (TensorData.Address(k) - TensorData.Address(q)).Should().NotBe(WeightArena.Padded(q.NumberOfElements, 2) * 2, "nothing was packed");
        var v = parameters["model.layers.0.self_attn.v_proj.weight"];
        (TensorData.Address(v) - TensorData.Address(k)).Should().NotBe(WeightArena.Padded(k.NumberOfElements, 4) * 4, "nothing was packed");
    }

    [Fact]
    public void Int8_weights_lie_in_one_buffer_in_decode_order()
    {
        using var model = Model("llama", tied: false, ScalarType.Float32);
        model.Quantize(new QuantizationOptions { Format = WeightFormat.Int8 });
        var kernels = model.Backbone.Layers.SelectMany(l => l.SelfAttention.Projections().Concat(l.Mlp.Projections()))
            .Select(p => (KernelLinear)p.Module).Append((KernelLinear)model.HeadOverride!).ToList();
        long expected = TensorData.Address(kernels[0].Weight);
        foreach (var k in kernels)
        {
            (TensorData.Address(k.Weight)).Should().Be(expected);
            expected += WeightArena.Padded((long)k.InFeatures * k.OutFeatures, 1);
        }
    }

    [Fact]
    public void The_buffer_is_advised_for_huge_pages_on_linux()
    {
        // A check of the advice, not of the kernel's choice: where transparent huge pages are enabled, smaps shows the
        // advised mapping with the "hg" flag whether or not 2 MiB pages were free at fault time.
        string thp = File.Exists("/sys/kernel/mm/transparent_hugepage/enabled") ? File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled") : "";
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/self/smaps") || thp.Contains("[never]")) return;
        using var arena = WeightArena.TryAllocate(3L << 20, ScalarType.Float32);
        arena.Should().NotBeNull();
        long start = TensorData.Address(arena!);
        long probe = (start + (2L << 20) - 1) & ~((2L << 20) - 1);
        string? flags = null;
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && long.TryParse(line[..dash], System.Globalization.NumberStyles.HexNumber, null, out long from)
                && long.TryParse(line[(dash + 1)..space], System.Globalization.NumberStyles.HexNumber, null, out long to))
                inside = probe >= from && probe < to;
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal)) { flags = line; break; }
        }
        flags.Should().NotBeNull("the buffer lies in a mapping of this process");
        flags!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Should().Contain("hg");
    }
}
