using System.Text.Json;
using DeepAlign.Models;
using DeepAlign.Models.Lora;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using DeepAlign.Checkpoints;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

public sealed class CheckpointResumeTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "deepalign-resume-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        TrainingCheckpoints.BeforeCommit = null;
        try { Directory.Delete(_root, true); } catch (IOException) { }
    }

    private sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => onReport(value);
    }

    /// <summary>Cancels the token when a given step's given micro-batch is about to be computed (a mid-step stop).</summary>
    private sealed class CancellingObjective(ITrainingObjective inner, long step, int micro, CancellationTokenSource cts) : ITrainingObjective
    {
        public string Name => inner.Name;
        public IReadOnlyList<string> RequiredTeachers => inner.RequiredTeachers;
        public TokenCounts CountTokens(TrainingBatch batch) => inner.CountTokens(batch);
        public ObjectiveOutput Compute(TrainingBatch batch, ObjectiveContext context)
        {
            if (context.Step == step && context.MicroBatch == micro) cts.Cancel();
            return inner.Compute(batch, context);
        }
    }

    private static TrainingData MixedData(int seed)
    {
        var records = JsonlDatasetReader.ReadFile(Path.Combine(SftReferenceTests.Dir, "data.jsonl"));
        return new TrainingData(new[]
        {
            new DataSource("harmful", records.Take(4).ToArray(), new SftExampleBuilder(), 1),
            new DataSource("benign", records.Skip(4).ToArray(), new SftExampleBuilder(), 2),
        }, seed);
    }

    private static TinyLm LoraModel()
    {
        var m = TinyLm.FromFixture(SftReferenceTests.Dir);
        LoraApplier.Apply(m, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.2, InitSeed = 3 });
        return m;
    }

    private TrainerOptions Options(string dir) => new()
    {
        MaxSteps = 6, MicroBatchSize = 2, GradientAccumulationSteps = 2, LearningRate = 1e-2, WarmupSteps = 2,
        WeightDecay = 0.01, Seed = 17, CheckpointDirectory = Path.Combine(_root, dir), CheckpointEvery = 0,
    };

    private static double[] Losses(TrainingResult r) => r.History.Select(h => h.Loss).ToArray();

    [Fact]
    public void Stopped_after_three_steps_and_resumed_gives_the_uninterrupted_losses()
    {
        torch.set_num_threads(1);
        double[] full;
        using (var m = LoraModel())
        using (var t = new Trainer(m, new SftObjective(), Options("full")))
            full = Losses(t.Train(MixedData(5)));
        full.Should().HaveCount(6);

        var cts = new CancellationTokenSource();
        var opts = Options("split");
        using (var m = LoraModel())
        using (var t = new Trainer(m, new SftObjective(), opts))
        {
            var act = () => t.Train(MixedData(5), new SyncProgress(p => { if (p.Step == 3) cts.Cancel(); }), cts.Token);
            act.Should().Throw<OperationCanceledException>();
        }
        var latest = TrainingCheckpoints.FindLatest(opts.CheckpointDirectory!);
        latest.Should().NotBeNull();
        TrainingCheckpoints.StepOf(latest!).Should().Be(3);

        using (var m = LoraModel())
        using (var t = new Trainer(m, new SftObjective(), opts))
        {
            var rest = t.Train(MixedData(5));
            rest.ResumedFromStep.Should().Be(3);
            Losses(rest).Should().Equal(full.Skip(3), (a, b) => Math.Abs(a - b) < 1e-6);
        }
    }

    [Fact]
    public void Cancelled_in_the_middle_of_an_accumulated_step_rewinds_to_the_last_complete_step()
    {
        torch.set_num_threads(1);
        double[] full;
        using (var m = TinyLm.FromFixture(SftReferenceTests.Dir))
        using (var t = new Trainer(m, new SftObjective(), Options("full")))
            full = Losses(t.Train(MixedData(9)));

        var cts = new CancellationTokenSource();
        var opts = Options("mid");
        using (var m = TinyLm.FromFixture(SftReferenceTests.Dir))
        using (var t = new Trainer(m, new CancellingObjective(new SftObjective(), step: 4, micro: 0, cts), opts))
        {
            var act = () => t.Train(MixedData(9), null, cts.Token);
            act.Should().Throw<OperationCanceledException>();
        }
        TrainingCheckpoints.StepOf(TrainingCheckpoints.FindLatest(opts.CheckpointDirectory!)!).Should().Be(4);
        using (var m = TinyLm.FromFixture(SftReferenceTests.Dir))
        using (var t = new Trainer(m, new SftObjective(), opts))
            Losses(t.Train(MixedData(9))).Should().Equal(full.Skip(4), (a, b) => Math.Abs(a - b) < 1e-6);
    }

    [Fact]
    public void A_crash_between_writing_and_renaming_leaves_the_previous_checkpoint_loadable()
    {
        torch.set_num_threads(1);
        var opts = Options("crash") with { MaxSteps = 4, CheckpointEvery = 2 };
        int saves = 0;
        string? leftover = null;
        TrainingCheckpoints.BeforeCommit = temp =>
        {
            if (++saves < 2) return;
            // Simulate a kill: leave a partial temporary folder behind (as a dead process would), then die.
            leftover = temp + "-killed";
            CopyDirectory(temp, leftover);
            File.WriteAllBytes(Path.Combine(leftover, "trainable.safetensors"), new byte[] { 1, 2, 3 });
            throw new IOException("injected crash before rename");
        };
        using (var m = TinyLm.FromFixture(SftReferenceTests.Dir))
        using (var t = new Trainer(m, new SftObjective(), opts))
        {
            var act = () => t.Train(MixedData(1));
            act.Should().Throw<IOException>().WithMessage("*injected*");
        }
        TrainingCheckpoints.BeforeCommit = null;
        Directory.Exists(leftover).Should().BeTrue();
        var latest = TrainingCheckpoints.FindLatest(opts.CheckpointDirectory!);
        Path.GetFileName(latest).Should().Be("checkpoint-000002");
        using (var m = TinyLm.FromFixture(SftReferenceTests.Dir))
        using (var t = new Trainer(m, new SftObjective(), opts))
        {
            var r = t.Train(MixedData(1));
            r.ResumedFromStep.Should().Be(2);
            r.Steps.Should().Be(4);
        }
        Directory.Exists(leftover).Should().BeFalse("the next save removes stale temporary folders");
        Path.GetFileName(TrainingCheckpoints.FindLatest(opts.CheckpointDirectory!)).Should().Be("checkpoint-000004");
    }

    [Fact]
    public void Checkpoint_holds_adapters_moments_step_position_and_rng()
    {
        torch.set_num_threads(1);
        var opts = Options("content") with { MaxSteps = 2 };
        using var m = LoraModel();
        using var t = new Trainer(m, new SftObjective(), opts);
        var r = t.Train(MixedData(2));
        var dir = r.LastCheckpoint!;
        var weights = TensorFile.Read(Path.Combine(dir, "trainable.safetensors"));
        weights.Keys.Should().OnlyContain(k => k.Contains(".lora_A.") || k.Contains(".lora_B."));
        weights.Should().HaveCount(2 * 7);
        var moments = TensorFile.Read(Path.Combine(dir, "optimizer.safetensors"));
        moments.Keys.Should().Contain("exp_avg.model.layers.0.self_attn.q_proj.lora_A.weight").And.HaveCount(4 * 7);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "trainer_state.json")));
        doc.RootElement.GetProperty("step").GetInt64().Should().Be(2);
        doc.RootElement.GetProperty("data_position").GetProperty("draws").GetInt64().Should().Be(8);
        doc.RootElement.GetProperty("torch_rng_state").GetString().Should().NotBeNullOrEmpty();
    }

    [Fact]
    public void Resuming_into_a_model_with_other_trainable_parameters_fails_naming_the_parameter()
    {
        torch.set_num_threads(1);
        var opts = Options("mismatch") with { MaxSteps = 1 };
        using (var m = LoraModel())
        using (var t = new Trainer(m, new SftObjective(), opts))
            t.Train(MixedData(2));
        using var full = TinyLm.FromFixture(SftReferenceTests.Dir);
        using var t2 = new Trainer(full, new SftObjective(), opts with { MaxSteps = 2 });
        var act = () => t2.Train(MixedData(2));
        act.Should().Throw<DeepAlign.Checkpoints.CheckpointFormatException>().WithMessage("*model.embed_tokens.weight*");
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
