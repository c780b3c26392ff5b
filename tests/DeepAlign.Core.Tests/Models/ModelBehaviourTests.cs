using DeepAlign.Checkpoints;
using DeepAlign.Models;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Configuration;
using static DeepAlign.Tests.Models.ModelTestUtil;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Models;

public class ModelBehaviourTests
{
    [Theory]
    [InlineData("llama_gqa")]
    [InlineData("qwen2_bias_tied")]
    public void Cached_incremental_decoding_equals_full_recomputation(string name)
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.FromPretrained(FixtureDir(name), CPU);
        using var expected = SafetensorsFile.Open(ExpectedFile(name));
        using var ids = expected.Load("input_ids");
        using var full = model.Forward(ids);
        long t = ids.shape[1];
        using var cache = model.CreateCache(2, capacity: 3); // forces growth
        using (var prefill = model.Forward(ids.narrow(1, 0, 7), cache: cache))
        {
            using var wantPrefill = full.narrow(1, 0, 7);
            MaxAbsDiff(prefill, wantPrefill).Should().BeLessThan(1e-4f);
        }
        cache.Length.Should().Be(7);
        for (long i = 7; i < t; i++)
        {
            using var step = model.Forward(ids.narrow(1, i, 1), cache: cache);
            using var want = full.narrow(1, i, 1);
            MaxAbsDiff(step, want).Should().BeLessThan(1e-4f, $"position {i}");
        }
        cache.Length.Should().Be((int)t);
    }

    [Fact]
    public void Decode_steps_leak_no_tensors()
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.Create(TinyConfig(), CPU, seed: 4);
        using var cache = model.CreateCache(2, 4);
        using var prompt = Ids(new long[] { 1, 2, 3 }, new long[] { 4, 5, 6 });
        using (model.Forward(prompt, cache: cache)) { }
        using var next = Ids(new long[] { 7 }, new long[] { 8 });
        using (model.Forward(next, cache: cache)) { }
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 100; i++)
        {
            using var mask = ones(2, cache.Length + 1, dtype: ScalarType.Int64);
            using var logits = model.Forward(next, mask, cache, lastPositionOnly: true);
        }
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        (after - before).Should().BeLessThanOrEqualTo(0, "every intermediate tensor of a decode step must be disposed");
        cache.Length.Should().Be(104);
    }

    [Fact]
    public void Cached_decoding_with_left_padding_matches_the_padded_full_pass()
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.FromPretrained(FixtureDir("llama_rope_llama3"), CPU);
        using var expected = SafetensorsFile.Open(ExpectedFile("llama_rope_llama3"));
        using var ids = expected.Load("input_ids");
        using var mask = expected.Load("attention_mask");
        using var full = model.Forward(ids, mask);
        using var cache = model.CreateCache(2, 16);
        using (var prefill = model.Forward(ids.narrow(1, 0, 9), mask.narrow(1, 0, 9), cache, lastPositionOnly: true))
        {
            using var want = full.narrow(1, 8, 1);
            MaxAbsDiff(prefill, want).Should().BeLessThan(1e-4f);
        }
        for (long i = 9; i < ids.shape[1]; i++)
        {
            using var step = model.Forward(ids.narrow(1, i, 1), mask.narrow(1, 0, i + 1), cache);
            using var want = full.narrow(1, i, 1);
            MaxAbsDiff(step, want).Should().BeLessThan(1e-4f, $"position {i}");
        }
    }

    [Theory]
    [InlineData("llama", 2, false)]
    [InlineData("llama", 4, true)]
    [InlineData("qwen2", 1, true)]
    public void Left_padded_batch_equals_single_sequences_row_by_row(string type, int kvHeads, bool tied)
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.Create(TinyConfig(type, kvHeads, tied), CPU, seed: 7);
        long[] a = { 5, 9, 13, 17, 21, 25, 29 };
        long[] b = { 40, 41, 42, 43 };
        long[] c = { 60 };
        using var batch = Ids(a, new long[] { 0, 0, 0 }.Concat(b).ToArray(), new long[] { 0, 0, 0, 0, 0, 0 }.Concat(c).ToArray());
        using var mask = Ids(Enumerable.Repeat(1L, 7).ToArray(), new long[] { 0, 0, 0, 1, 1, 1, 1 }, new long[] { 0, 0, 0, 0, 0, 0, 1 });
        using var logits = model.Forward(batch, mask);
        using var finite = logits.isfinite().all();
        finite.item<bool>().Should().BeTrue();
        var rows = new[] { a, b, c };
        for (int r = 0; r < 3; r++)
        {
            using var single = model.Forward(Ids(rows[r]));
            using var real = logits[r].narrow(0, 7 - rows[r].Length, rows[r].Length);
            MaxAbsDiff(real, single[0]).Should().BeLessThan(1e-4f, $"row {r}");
        }
    }

    [Theory]
    [InlineData(null, "float32")]
    [InlineData(1500L, "float32")]
    [InlineData(null, "bfloat16")]
    public void SavePretrained_then_FromPretrained_gives_identical_logits(long? shardBytes, string dtypeName)
    {
        using var _ = no_grad();
        using var dir = new TempDir();
        var dtype = CausalLanguageModel.ParseDType(dtypeName)!.Value;
        using var model = CausalLanguageModel.Create(TinyConfig("qwen2", 2, tied: true), CPU, dtype, seed: 3);
        model.GenerationConfig = new GenerationConfig { EosTokenIds = new[] { 2, 3 }, Temperature = 0.7 };
        model.SavePretrained(dir.Path, shardBytes);
        File.Exists(dir.File(shardBytes is null ? "model.safetensors" : "model.safetensors.index.json")).Should().BeTrue();
        var config = HfConfigFiles.ReadModelConfig(dir.Path);
        config.TorchDtype.Should().Be(dtypeName);
        config.Architectures.Should().Equal("Qwen2ForCausalLM");

        using var reloaded = CausalLanguageModel.FromPretrained(dir.Path, CPU, dtype);
        reloaded.GenerationConfig!.EosTokenIds.Should().Equal(2, 3);
        using var ids = Ids(new long[] { 3, 1, 4, 1, 5, 9, 2, 6 });
        using var a = model.Forward(ids);
        using var b = reloaded.Forward(ids);
        MaxAbsDiff(a, b).Should().Be(0f);
    }

    [Fact]
    public void Create_is_deterministic_from_a_seed_and_initialises_like_transformers()
    {
        var config = TinyConfig() with { InitializerRange = 0.02, AttentionBias = true };
        using var m1 = CausalLanguageModel.Create(config, CPU, seed: 11);
        using var m2 = CausalLanguageModel.Create(config, CPU, seed: 11);
        using var m3 = CausalLanguageModel.Create(config, CPU, seed: 12);
        var p1 = m1.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var p2 = m2.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var p3 = m3.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        p1["model.layers.0.mlp.up_proj.weight"].SameAs(p2["model.layers.0.mlp.up_proj.weight"]).Should().BeTrue();
        p1["model.layers.0.mlp.up_proj.weight"].SameAs(p3["model.layers.0.mlp.up_proj.weight"]).Should().BeFalse();
        p1["model.norm.weight"].min().item<float>().Should().Be(1f);
        p1["model.layers.1.self_attn.o_proj.bias"].abs().max().item<float>().Should().Be(0f);
        p1["model.embed_tokens.weight"].std().item<float>().Should().BeApproximately(0.02f, 0.002f);
        m1.ParameterCount.Should().Be(m1.NamedParameters().Sum(p => p.Parameter.NumberOfElements));
    }

    [Fact]
    public void ReplaceLinear_swaps_a_projection_and_exposes_its_parameters()
    {
        using var _ = no_grad();
        using var model = CausalLanguageModel.Create(TinyConfig(), CPU, seed: 5);
        model.NamedLinearLayers().Should().HaveCount(14);
        model.NamedLinearLayers().First().Name.Should().Be("model.layers.0.self_attn.q_proj");
        using var ids = Ids(new long[] { 4, 8, 15, 16, 23, 42 });
        using var before = model.Forward(ids);

        var original = model.NamedLinearLayers().Single(l => l.Name == "model.layers.1.mlp.down_proj").Module;
        var wrapper = new ScaledWrapper(original, 1.0);
        model.ReplaceLinear("model.layers.1.mlp.down_proj", wrapper);
        model.NamedLinearLayers().Should().HaveCount(13);
        model.NamedParameters().Select(p => p.Name).Should().Contain("model.layers.1.mlp.down_proj.base_layer.weight")
            .And.Contain("model.layers.1.mlp.down_proj.scale");
        using (var same = model.Forward(ids)) MaxAbsDiff(same, before).Should().Be(0f);
        wrapper.Scale.fill_(0.0);
        using (var changed = model.Forward(ids)) MaxAbsDiff(changed, before).Should().BeGreaterThan(1e-3f);

        var bad = () => model.ReplaceLinear("model.layers.9.mlp.down_proj", wrapper);
        bad.Should().Throw<ArgumentException>().WithMessage("*model.layers.9.mlp.down_proj*");
    }

    private sealed class ScaledWrapper : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE1006
        private readonly nn.Module<Tensor, Tensor> base_layer;
        private readonly TorchSharp.Modules.Parameter scale;
#pragma warning restore IDE1006

        public ScaledWrapper(nn.Module<Tensor, Tensor> inner, double s) : base("wrapper")
        {
            base_layer = inner;
            scale = new TorchSharp.Modules.Parameter(tensor((float)s));
            RegisterComponents();
        }

        public TorchSharp.Modules.Parameter Scale => scale;

        public override Tensor forward(Tensor x) => base_layer.call(x) * scale;
    }

    [Fact]
    public void Training_mode_backpropagates_into_all_parameters()
    {
        using var model = CausalLanguageModel.Create(TinyConfig(tied: true), CPU, seed: 9);
        model.SetTrainingMode(true);
        using var ids = Ids(new long[] { 1, 2, 3, 4, 5 }, new long[] { 6, 7, 8, 9, 10 });
        using var logits = model.Forward(ids);
        using var loss = logits.log_softmax(-1).mean();
        loss.backward();
        model.TrainableParameters().Should().HaveCount(model.NamedParameters().Count());
        model.NamedParameters().Should().OnlyContain(p => !ReferenceEquals(p.Parameter.grad, null));
    }

    [Fact]
    public void Unsupported_config_keys_throw_NotSupportedException_naming_the_key()
    {
        void Throws(CausalLMConfig c, string key)
        {
            var act = () => CausalLanguageModel.Create(c, CPU, seed: 1).Dispose();
            act.Should().Throw<NotSupportedException>().WithMessage($"*'{key}'*");
        }
        Throws(TinyConfig() with { ModelType = "mistral" }, "model_type");
        Throws(TinyConfig() with { HiddenAct = "gelu" }, "hidden_act");
        Throws(TinyConfig() with { RopeScaling = new RopeScalingConfig { RopeType = "yarn", Factor = 4 } }, "rope_scaling.rope_type");
        Throws(TinyConfig() with { RopeScaling = new RopeScalingConfig { Type = "linear", Factor = 2 } }, "rope_scaling.rope_type");
        Throws(TinyConfig("qwen2") with { UseSlidingWindow = true }, "use_sliding_window");

        var badHeads = () => CausalLanguageModel.Create(TinyConfig(kvHeads: 3), CPU, seed: 1).Dispose();
        badHeads.Should().Throw<ArgumentException>().WithMessage("*num_key_value_heads*");
    }

    [Fact]
    public void Unsupported_model_type_in_a_folder_is_named()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{\"model_type\": \"gpt2\", \"vocab_size\": 10}");
        using var t = zeros(1);
        SafetensorsWriter.Save(dir.File("model.safetensors"), new[] { ("x", t) });
        var act = () => CausalLanguageModel.FromPretrained(dir.Path, CPU).Dispose();
        var e = act.Should().Throw<DeepAlign.Configuration.ModelConfigException>().WithMessage("*config.json*'model_type' = 'gpt2'*").Which;
        e.Key.Should().Be("model_type");
    }

    [Fact]
    public void Missing_unexpected_and_misshaped_tensors_are_named()
    {
        using var dir = new TempDir();
        using (var model = CausalLanguageModel.Create(TinyConfig(), CPU, seed: 2)) model.SavePretrained(dir.Path);
        var good = CausalLanguageModel.FromPretrained(dir.Path, CPU);
        var tensors = good.NamedParameters().ToDictionary(p => p.Name, p => (Tensor)p.Parameter);

        void Rewrite(Dictionary<string, Tensor> set) => SafetensorsWriter.Save(dir.File("model.safetensors"), set.Select(kv => (kv.Key, kv.Value)));
        var load = () => CausalLanguageModel.FromPretrained(dir.Path, CPU).Dispose();

        Rewrite(tensors.Where(kv => kv.Key != "model.layers.1.mlp.gate_proj.weight").ToDictionary());
        load.Should().Throw<CheckpointFormatException>().WithMessage("*lacks 1 tensor*model.layers.1.mlp.gate_proj.weight*");

        using var extra = zeros(3);
        Rewrite(new Dictionary<string, Tensor>(tensors) { ["model.layers.0.mystery.weight"] = extra });
        load.Should().Throw<CheckpointFormatException>().WithMessage("*model.layers.0.mystery.weight*");

        using var wrong = zeros(5, 5);
        Rewrite(new Dictionary<string, Tensor>(tensors) { ["model.norm.weight"] = wrong });
        load.Should().Throw<CheckpointFormatException>().WithMessage("*'model.norm.weight'*[5, 5]*[32]*");

        File.Delete(dir.File("config.json"));
        load.Should().Throw<FileNotFoundException>().WithMessage("*config.json*");
        good.Dispose();
    }
}
