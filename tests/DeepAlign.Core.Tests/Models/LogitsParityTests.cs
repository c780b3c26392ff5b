using DeepAlign.Checkpoints;
using DeepAlign.Models;
using DeepAlign.Models.Llama;
using DeepAlign.Models.Qwen2;
using FluentAssertions;
using Xunit;
using DeepAlign.Configuration;
using static DeepAlign.Tests.Models.ModelTestUtil;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Models;

/// <summary>
/// Logits of checkpoints written by tests/scripts/reference/llama_reference.py against that script's independent
/// PyTorch forward pass (max abs difference, float32 compute).
/// </summary>
public class LogitsParityTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Cases => new()
    {
        "llama_gqa", "llama_tied", "llama_rope_llama3", "llama_bf16", "llama_sharded_bias", "qwen2_bias_tied",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_the_pytorch_reference(string name)
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.FromPretrained(FixtureDir(name), CPU, ScalarType.Float32);
        using var expected = SafetensorsFile.Open(ExpectedFile(name));
        using var ids = expected.Load("input_ids");
        using var want = expected.Load("logits");
        using var got = model.Forward(ids);
        got.dtype.Should().Be(ScalarType.Float32);
        got.shape.Should().Equal(want.shape);
        MaxAbsDiff(got, want).Should().BeLessThan(Tolerance);

        using var last = model.Forward(ids, lastPositionOnly: true);
        last.shape.Should().Equal(2, 1, model.VocabSize);
        using var wantLast = want.narrow(1, want.shape[1] - 1, 1);
        MaxAbsDiff(last, wantLast).Should().BeLessThan(Tolerance);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Left_padded_logits_match_the_reference_on_real_positions(string name)
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.FromPretrained(FixtureDir(name), CPU, ScalarType.Float32);
        using var expected = SafetensorsFile.Open(ExpectedFile(name));
        using var ids = expected.Load("input_ids");
        using var mask = expected.Load("attention_mask");
        using var want = expected.Load("logits_padded");
        using var got = model.Forward(ids, mask);
        using var finite = got.isfinite().all();
        finite.item<bool>().Should().BeTrue("a fully masked (padded) query row must not produce NaN");
        using var row0 = got[0];
        using var want0 = want[0];
        MaxAbsDiff(row0, want0).Should().BeLessThan(Tolerance);
        int pad = (int)(mask.shape[1] - mask[1].sum().item<long>());
        pad.Should().BeGreaterThan(0);
        using var row1 = got[1].narrow(0, pad, mask.shape[1] - pad);
        using var want1 = want[1].narrow(0, pad, mask.shape[1] - pad);
        MaxAbsDiff(row1, want1).Should().BeLessThan(Tolerance);
    }

    [Fact]
    public void Families_and_tensor_names_follow_the_checkpoint()
    {
        using var llama = CausalLanguageModel.FromPretrained(FixtureDir("llama_gqa"), CPU);
        llama.Should().BeOfType<LlamaForCausalLM>();
        using var qwen = CausalLanguageModel.FromPretrained(FixtureDir("qwen2_bias_tied"), CPU);
        qwen.Should().BeOfType<Qwen2ForCausalLM>();
        qwen.NamedParameters().Select(p => p.Name).Should().NotContain("lm_head.weight")
            .And.Contain("model.layers.1.self_attn.k_proj.bias").And.NotContain("model.layers.1.self_attn.o_proj.bias");
        qwen.GenerationConfig!.MaxNewTokens.Should().Be(16);

        using var ckpt = SafetensorsCheckpoint.Open(FixtureDir("llama_sharded_bias"));
        using var sharded = CausalLanguageModel.FromPretrained(FixtureDir("llama_sharded_bias"), CPU);
        sharded.NamedParameters().Select(p => p.Name).Should().BeEquivalentTo(ckpt.TensorNames);
        ckpt.Files.Should().HaveCount(3);
    }

    [Fact]
    public void Bf16_checkpoint_loads_as_bf16_and_stays_close_to_fp32_compute()
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.FromPretrained(FixtureDir("llama_bf16"), CPU, ScalarType.BFloat16);
        model.DType.Should().Be(ScalarType.BFloat16);
        model.NamedParameters().Should().OnlyContain(p => p.Parameter.dtype == ScalarType.BFloat16);
        using var expected = SafetensorsFile.Open(ExpectedFile("llama_bf16"));
        using var ids = expected.Load("input_ids");
        using var want = expected.Load("logits");
        using var got = model.Forward(ids);
        got.dtype.Should().Be(ScalarType.Float32);
        MaxAbsDiff(got, want).Should().BeLessThan(0.25f, "bf16 activations round at ~3 significant digits");
    }
}
