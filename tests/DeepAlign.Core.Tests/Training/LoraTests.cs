using DeepAlign.Models.Lora;
using DeepAlign.Training;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Checkpoints;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

public sealed class LoraTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "deepalign-lora-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static Tensor Logits(TinyLm m)
    {
        using var _ = no_grad();
        m.SetTrainingMode(false);
        var data = SftReferenceTests.Data();
        using var b = DeepAlign.Training.Data.BatchCollator.Collate(data.Next(4), 0, CPU);
        return m.Forward(b.InputIds, b.AttentionMask);
    }

    private static double MaxDiff(Tensor a, Tensor b) => a.sub(b).abs().max().item<float>();

    [Fact]
    public void Fresh_adapters_leave_outputs_unchanged_and_only_A_and_B_train()
    {
        torch.set_num_threads(1);
        using var m = TinyLm.FromFixture(SftReferenceTests.Dir);
        using var before = Logits(m);
        var wrapped = LoraApplier.Apply(m, new LoraOptions { Rank = 4, Alpha = 8 });
        wrapped.Should().HaveCount(7).And.NotContain("lm_head");
        using var after = Logits(m);
        MaxDiff(before, after).Should().Be(0);
        m.NamedParameters().Where(p => p.Parameter.requires_grad).Select(p => p.Name).Should()
            .OnlyContain(n => n.EndsWith(".lora_A.weight") || n.EndsWith(".lora_B.weight")).And.HaveCount(14);
        foreach (var (_, a) in LoraApplier.Adapters(m))
        {
            a.LoraB.abs().max().item<float>().Should().Be(0);
            double bound = 1 / Math.Sqrt(a.LoraA.shape[1]);
            a.LoraA.abs().max().item<float>().Should().BeLessThanOrEqualTo((float)bound).And.BeGreaterThan((float)(bound / 2));
            a.Scaling.Should().Be(2.0);
        }
    }

    [Fact]
    public void Training_moves_adapters_not_base_weights_and_merging_equals_the_unmerged_adapter()
    {
        torch.set_num_threads(1);
        using var m = TinyLm.FromFixture(SftReferenceTests.Dir);
        var baseBefore = m.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.detach().clone());
        var options = new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1 };
        LoraApplier.Apply(m, options);
        using (var t = new Trainer(m, new SftObjective(), new TrainerOptions { MaxSteps = 3, MicroBatchSize = 4, LearningRate = 5e-2 }))
            t.Train(SftReferenceTests.Data());
        foreach (var (name, p) in m.NamedParameters().Where(p => !p.Parameter.requires_grad))
            p.detach().sub(baseBefore[name]).abs().max().item<float>().Should().Be(0f, $"{name} is frozen");
        LoraApplier.Adapters(m).Should().OnlyContain(a => a.Adapter.LoraB.abs().max().item<float>() > 0);
        using var unmerged = Logits(m);
        using var baseLogits = Logits(TinyLm.FromFixture(SftReferenceTests.Dir));
        MaxDiff(unmerged, baseLogits).Should().BeGreaterThan(1e-3, "the adapters changed the model");

        LoraApplier.SaveAdapter(m, options, _dir, "tiny");
        LoraApplier.Merge(m).Should().Be(7);
        LoraApplier.Adapters(m).Should().BeEmpty();
        using var merged = Logits(m);
        MaxDiff(unmerged, merged).Should().BeLessThan(1e-5);

        // The PEFT folder loads back into a fresh base model with the same outputs.
        File.Exists(Path.Combine(_dir, "adapter_config.json")).Should().BeTrue();
        var keys = TensorFile.Read(Path.Combine(_dir, "adapter_model.safetensors")).Keys;
        keys.Should().Contain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
            .And.Contain("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").And.HaveCount(14);
        using var fresh = TinyLm.FromFixture(SftReferenceTests.Dir);
        var loaded = LoraApplier.LoadAdapter(fresh, _dir);
        loaded.Rank.Should().Be(4);
        loaded.Alpha.Should().Be(8);
        using var reloaded = Logits(fresh);
        MaxDiff(unmerged, reloaded).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Unknown_targets_and_bad_options_are_rejected()
    {
        using var m = TinyLm.FromFixture(SftReferenceTests.Dir);
        var act = () => LoraApplier.Apply(m, new LoraOptions { TargetModules = new[] { "c_attn" } });
        act.Should().Throw<ArgumentException>().WithMessage("*c_attn*q_proj*");
        var bad = () => LoraApplier.Apply(m, new LoraOptions { Dropout = 1.5 });
        bad.Should().Throw<ArgumentException>().Where(e => e.ParamName == "Dropout");
    }
}
