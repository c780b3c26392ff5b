using DeepAlign.Configuration;
using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Models.Lora;
using DeepAlign.Runtime;
using DeepAlign.Testing;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Runtime;

/// <summary>
/// Device-agnostic proof without a GPU: models, LoRA training, contrastive scoring and the targeted-completion terms
/// run on libtorch's <c>meta</c> device, where tensors have shapes, dtypes and devices but no data. A tensor the
/// library creates on the CPU instead of the model's device meets a meta tensor in some op and throws ("Expected all
/// tensors to be on the same device"), as it would on CUDA. What this covers and what it cannot is in
/// docs/getting-started.md ("What the meta-device tests cover").
/// </summary>
public sealed class MetaDeviceTests
{
    private static readonly Device Meta = new(DeviceType.META);
    private const int Vocab = 96;

    private static CausalLMConfig Config(string family) => family switch
    {
        "llama" => TinyModelFactory.LlamaConfig(vocabSize: Vocab, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64),
        // Qwen2: q/k/v biases, tied head, and no grouped-query folding (kvHeads = heads) for the plain causal path.
        "qwen2" => TinyModelFactory.Qwen2Config(vocabSize: Vocab, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 4, intermediateSize: 64),
        _ => throw new ArgumentException(family, nameof(family)),
    };

    private static ScalarType DType(string name) => CausalLanguageModel.ParseDType(name)!.Value;

    private static Tensor Ids(long rows, long length) => zeros(new long[] { rows, length }, ScalarType.Int64, Meta);
    private static Tensor Mask(long rows, long length) => ones(new long[] { rows, length }, ScalarType.Int64, Meta);

    private static void ShouldBeMeta(Tensor t, params long[] shape)
    {
        t.device_type.Should().Be(DeviceType.META);
        t.shape.Should().Equal(shape);
    }

    [Fact]
    public void The_premise_a_cpu_tensor_fed_to_a_meta_model_throws()
    {
        using var model = TinyModelFactory.Create(Config("llama"), seed: 1, device: Meta);
        using var scope = NewDisposeScope();
        // CPU ids meet the meta embedding; a CPU mask meets the meta rotary table: both are wrong-device tensors.
        var cpuIds = zeros(new long[] { 1, 4 }, ScalarType.Int64);
        var act = () => model.Forward(cpuIds);
        act.Should().Throw<Exception>().Where(e => e.Message.Contains("same device"));
        var cpuMask = ones(new long[] { 1, 4 }, ScalarType.Int64);
        var act2 = () => model.Forward(Ids(1, 4), cpuMask);
        act2.Should().Throw<Exception>().Where(e => e.Message.Contains("same device"));
        // And a meta model really gives meta tensors that cannot be read on the host.
        var logits = model.Forward(Ids(1, 4));
        var read = () => logits.cpu();
        read.Should().Throw<Exception>().Where(e => e.Message.Contains("meta"));
    }

    [Theory]
    [InlineData("llama", "float32")]
    [InlineData("llama", "bfloat16")]
    [InlineData("qwen2", "float32")]
    [InlineData("qwen2", "bfloat16")]
    public void Forward_with_and_without_mask_and_kv_cache_stays_on_the_model_device(string family, string dtype)
    {
        using var model = TinyModelFactory.Create(Config(family), seed: 1, device: Meta, dtype: DType(dtype));
        model.NamedParameters().Should().OnlyContain(p => p.Parameter.device_type == DeviceType.META);
        using var scope = NewDisposeScope();

        var plain = model.Forward(Ids(2, 5));
        ShouldBeMeta(plain, 2, 5, Vocab);
        plain.dtype.Should().Be(ScalarType.Float32, "logits are float32 whatever the weight dtype");

        // Left padding is a mask (values do not exist on meta; the shapes and devices of the mask path do).
        ShouldBeMeta(model.Forward(Ids(2, 5), Mask(2, 5)), 2, 5, Vocab);
        ShouldBeMeta(model.Forward(Ids(2, 5), Mask(2, 5), lastPositionOnly: true), 2, 1, Vocab);

        // Prefill into a cache smaller than the sequence (it grows), then two decode steps.
        using var cache = model.CreateCache(2, capacity: 3);
        ShouldBeMeta(model.Forward(Ids(2, 5), Mask(2, 5), cache, lastPositionOnly: true), 2, 1, Vocab);
        ShouldBeMeta(model.Forward(Ids(2, 1), Mask(2, 6), cache), 2, 1, Vocab);
        cache.Length.Should().Be(6);
        // A cache without an attention mask (positions from arange on the model's device).
        ShouldBeMeta(model.Forward(Ids(2, 1), null, cache), 2, 1, Vocab);

        // Row selection and branching keep the cache usable on the device.
        using var branch = cache.Clone();
        branch.SelectRows(new long[] { 1 });
        ShouldBeMeta(model.Forward(Ids(1, 1), Mask(1, 8), branch), 1, 1, Vocab);
        branch.Length.Should().Be(8);
    }

    [Fact]
    public void Math_attention_fallback_equals_scaled_dot_product_attention_on_the_cpu()
    {
        // The meta path's formula must be sdpa's: compare on the CPU, where both run with values.
        using var scope = NewDisposeScope();
        using var gen = new TorchSharp.torch.Generator(7, CPU);
        var q = randn(new long[] { 2, 2, 6, 8 }, generator: gen);
        var k = randn(new long[] { 2, 2, 6, 8 }, generator: gen);
        var v = randn(new long[] { 2, 2, 6, 8 }, generator: gen);
        var real = tensor(new long[] { 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, new long[] { 2, 6 });
        var mask = Attention.BuildMask(real, 2, 0, 6, CPU);

        var causal = Attention.MathAttention(q, k, v, null, 0.0, causal: true);
        var causalRef = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
        (causal - causalRef).abs().max().item<float>().Should().BeLessThan(1e-5f);

        var masked = Attention.MathAttention(q, k, v, mask, 0.0, causal: false);
        var maskedRef = nn.functional.scaled_dot_product_attention(q, k, v, mask);
        (masked - maskedRef).abs().max().item<float>().Should().BeLessThan(1e-5f);

        // The fallback checks devices like the CUDA kernel.
        var act = () => Attention.MathAttention(q.to(Meta), k.to(Meta), v.to(Meta), mask, 0.0, causal: false);
        act.Should().Throw<InvalidOperationException>().WithMessage("*same device*meta*cpu*");
    }

    [Fact]
    public void Meta_fallbacks_give_the_operators_shapes_and_dtypes_and_check_devices()
    {
        using var scope = NewDisposeScope();
        var x = empty(new long[] { 5, 7, 3 }, ScalarType.BFloat16);
        var idx = tensor(new long[] { 4, 0, 2, 2 });
        foreach (long dim in new long[] { 0, 1, -1 })
        {
            var onMeta = MetaFallback.IndexSelect(x.to(Meta), dim, idx.to(Meta));
            var onCpu = x.index_select(dim, dim == 2 || dim == -1 ? tensor(new long[] { 0, 1, 2, 2 }) : idx);
            onMeta.shape.Should().Equal(onCpu.shape);
            onMeta.dtype.Should().Be(ScalarType.BFloat16);
            onMeta.device_type.Should().Be(DeviceType.META);
        }
        var wrong = () => MetaFallback.IndexSelect(x.to(Meta), 0, idx);
        wrong.Should().Throw<InvalidOperationException>().WithMessage("*same device*");

        var cond = empty(new long[] { 4, 1 }, ScalarType.Bool);
        var a = empty(new long[] { 4, 6 }, ScalarType.Float32);
        var b = empty(new long[] { 1, 6 }, ScalarType.Float64);
        var w = MetaFallback.Where(cond.to(Meta), a.to(Meta), b.to(Meta));
        var reference = where(cond.fill_(true), a.fill_(1.0f), b.fill_(2.0));
        w.shape.Should().Equal(reference.shape);
        w.dtype.Should().Be(reference.dtype);
        var wrongWhere = () => MetaFallback.Where(cond, a.to(Meta), b.to(Meta));
        wrongWhere.Should().Throw<InvalidOperationException>().WithMessage("*same device*");
        // Off meta, the operator itself: values equal torch.where.
        MetaFallback.Where(cond, a, b).Equals(reference).Should().BeTrue();
        // 0-dim CPU tensors are scalars on every device.
        MetaFallback.RequireSameDevice("test", a.to(Meta), tensor(1.0f));
    }

    [Theory]
    [InlineData("llama", "float32")]
    [InlineData("qwen2", "bfloat16")]
    public void Lora_training_step_forward_loss_backward_and_adamw_run_on_the_model_device(string family, string dtype)
    {
        using var model = TinyModelFactory.Create(Config(family), seed: 1, device: Meta, dtype: DType(dtype));
        var wrapped = LoraApplier.Apply(model, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.1, InitSeed = 3 });
        wrapped.Should().NotBeEmpty();
        model.SetTrainingMode(true); // dropout on: attention dropout is 0 in the config, LoRA dropout is live
        var trainable = model.NamedParameters().Where(p => p.Parameter.requires_grad).ToList();
        trainable.Should().NotBeEmpty().And.OnlyContain(p => p.Name.Contains("lora_"));
        trainable.Should().OnlyContain(p => p.Parameter.device_type == DeviceType.META && p.Parameter.dtype == ScalarType.Float32);

        using var scope = NewDisposeScope();
        var examples = new[]
        {
            new TrainingExample { Ids = new long[] { 1, 5, 6, 7, 8, 2 }, Targets = new[] { false, false, false, true, true, true }, ResponseStart = 3 },
            new TrainingExample { Ids = new long[] { 1, 9, 10, 2 }, Targets = new[] { false, false, true, true }, ResponseStart = 2 },
        };
        using var batch = BatchCollator.Collate(examples, padId: 0, Meta);
        foreach (var t in new[] { batch.InputIds, batch.AttentionMask, batch.TargetMask, batch.ResponsePositions })
            t.device_type.Should().Be(DeviceType.META);

        var logits = model.Forward(batch.InputIds, batch.AttentionMask);
        ShouldBeMeta(logits, 2, 6, Vocab);
        // A dense masked NLL (the library objectives select targets with boolean masks, a data-dependent shape meta cannot compute).
        long t1 = batch.Length - 1;
        var logp = logits.narrow(1, 0, t1).log_softmax(-1);
        var picked = logp.gather(-1, batch.InputIds.narrow(1, 1, t1).unsqueeze(-1)).squeeze(-1);
        var loss = picked.mul(batch.TargetMask.narrow(1, 1, t1).to_type(ScalarType.Float32)).sum().neg();
        loss.backward();

        foreach (var (name, p) in trainable)
        {
            p.grad.Should().NotBeNull(name);
            p.grad!.device_type.Should().Be(DeviceType.META, name);
            p.grad.shape.Should().Equal(p.shape, name);
        }
        foreach (var (name, p) in model.NamedParameters().Where(p => !p.Parameter.requires_grad))
            (p.grad is null).Should().BeTrue($"{name} is frozen");

        using var optimizer = new DeepAlign.Training.AdamW(trainable, 0.9, 0.999, 1e-8, weightDecay: 0.01);
        optimizer.Step(1e-3);
        optimizer.StepCount.Should().Be(1);
        var state = optimizer.StateTensors().ToList();
        state.Should().HaveCount(2 * trainable.Count).And.OnlyContain(s => s.Tensor.device_type == DeviceType.META);
        optimizer.ZeroGrad();
        trainable.Should().OnlyContain(p => p.Parameter.device_type == DeviceType.META);
        // The adapters merge on the device too.
        foreach (var (_, adapter) in LoraApplier.Adapters(model))
            adapter.MergedWeight().device_type.Should().Be(DeviceType.META);
    }

    public static TheoryData<string, string> ScorerCases() => new()
    {
        { "full-incompleteness", "llama" },
        { "base-favored-ramp", "qwen2" },
        { "constant-cut", "llama" },
    };

    private static ContrastiveDecoderOptions ScorerOptions(string rule) => rule switch
    {
        "full-incompleteness" => new() { Rule = ContrastiveRule.Full, Alpha = new IncompletenessDrivenAlpha(AlphaMax: 2.0), PlausibilityBeta = 0.1 },
        "base-favored-ramp" => new() { Rule = ContrastiveRule.BaseFavoredOnly, Alpha = new LinearRampAlpha(0.5, 2.0, 4), PlausibilityBeta = 0.0 },
        "constant-cut" => new() { Alpha = new ConstantAlpha(1.0), VocabSize = Vocab - 6 },
        _ => throw new ArgumentException(rule, nameof(rule)),
    };

    [Theory]
    [MemberData(nameof(ScorerCases))]
    public void Contrastive_scorer_prefill_steps_and_row_selection_run_on_the_model_device(string rule, string family)
    {
        using var aligned = TinyModelFactory.Create(Config(family), seed: 1, device: Meta);
        using var baseModel = TinyModelFactory.Create(Config(family), seed: 2, device: Meta);
        var options = ScorerOptions(rule);
        int width = options.VocabSize ?? Vocab;
        using var scorer = new ContrastiveScorer(aligned, baseModel, options);
        scorer.Device.type.Should().Be(DeviceType.META);
        using var scope = NewDisposeScope();

        var prefill = scorer.Prefill(Ids(5, 4), Mask(5, 4), new ScoringContext(0, [0, 1, 2, 3, 4], [1, 1, 1, 1, 1]), maxNewTokens: 4);
        ShouldBeMeta(prefill, 5, width);
        prefill.dtype.Should().Be(ScalarType.Float32);
        ShouldBeMeta(scorer.Step(Ids(5, 1), Mask(5, 5), new ScoringContext(1, [0, 1, 2, 3, 4], [2, 2, 2, 2, 2])), 5, width);

        // One row of five finishes: the lazy path (idle rows fed on the device, outputs dropped).
        scorer.SelectRows(new long[] { 0, 1, 3, 4 });
        ShouldBeMeta(scorer.Step(Ids(4, 1), Mask(4, 6), new ScoringContext(2, [0, 1, 3, 4], [3, 3, 3, 3])), 4, width);
        // Two more finish: the caches are compacted.
        scorer.SelectRows(new long[] { 1, 2 });
        ShouldBeMeta(scorer.Step(Ids(2, 1), Mask(2, 7), new ScoringContext(3, [1, 3], [4, 4])), 2, width);
        scorer.Reset();
    }

    [Fact]
    public void Contrastive_scoring_core_runs_on_the_model_device()
    {
        using var scope = NewDisposeScope();
        var la = empty(new long[] { 3, Vocab }, ScalarType.Float32, Meta);
        var lb = empty(new long[] { 3, Vocab }, ScalarType.Float32, Meta);
        var positions = empty(new long[] { 3 }, ScalarType.Int64, Meta);
        using var step = ContrastiveScoring.Step(la, lb, positions, new ContrastiveScoringOptions
        {
            Alpha = new IncompletenessDrivenAlpha(AlphaMax: 2.0), PlausibilityBeta = 0.1,
        });
        ShouldBeMeta(step.Scores, 3, Vocab);
        ShouldBeMeta(step.Alpha, 3);
        ShouldBeMeta(step.Incompleteness!, 3);
        ShouldBeMeta(ContrastiveScoring.Scores(la, lb, 1.5, ContrastiveRule.BaseFavoredOnly, 0.2), 3, Vocab);
        ShouldBeMeta(PositionStatistics.KlDivergence(la, lb), 3);
    }

    [Fact]
    public void Logits_processing_and_greedy_choice_run_on_the_scores_device()
    {
        // The generator's own loop reads the chosen ids on the host every step, which meta cannot; its tensor steps can run.
        using var scope = NewDisposeScope();
        var scores = empty(new long[] { 3, Vocab }, ScalarType.Float32, Meta);
        ShouldBeMeta(LogitsProcessing.Process(scores, temperature: 0.7, topK: 5, topP: 0.9), 3, Vocab);
        ShouldBeMeta(TokenSampler.Greedy(scores), 3);
        // TokenSampler.Sample's tensor form needs searchsorted, which has no meta kernel in libtorch C++.
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Targeted_completion_terms_and_their_backward_run_on_the_model_device(bool probeWeights)
    {
        // The objective's terms on every predicting position of a batch (the objective itself first selects the target
        // rows with a boolean mask, whose data-dependent shape meta cannot compute).
        var config = Config("llama");
        using var student = TinyModelFactory.Create(config, seed: 1, device: Meta);
        using var aligned = TinyModelFactory.Create(config, seed: 1, device: Meta);
        using var baseModel = TinyModelFactory.Create(config, seed: 2, device: Meta);
        LoraApplier.Apply(student, new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.0 });
        var trainable = student.NamedParameters().Where(p => p.Parameter.requires_grad).ToList();
        var options = new TargetedCompletionOptions { ProbeNorms = probeWeights ? new[] { 1.0, 2.0, 3.0 } : null }.Validate();
        using var scope = NewDisposeScope();

        var ids = Ids(2, 6);
        var mask = Mask(2, 6);
        const long n = 2 * 5;
        var ls = PositionStatistics.LogSoftmax(student.Forward(ids, mask).narrow(1, 0, 5).reshape(n, Vocab));
        Tensor la, lb;
        using (no_grad())
        {
            la = PositionStatistics.LogSoftmax(aligned.Forward(ids, mask).narrow(1, 0, 5).reshape(n, Vocab));
            lb = PositionStatistics.LogSoftmax(baseModel.Forward(ids, mask).narrow(1, 0, 5).reshape(n, Vocab));
        }
        var positions = ones(new long[] { n }, ScalarType.Int64, Meta);
        var labels = ids.narrow(1, 1, 5).reshape(n);

        var teacher = TargetedCompletionObjective.Teacher(la, lb, positions, options);
        ShouldBeMeta(teacher.Q, n, Vocab);
        ShouldBeMeta(teacher.W, n);
        ShouldBeMeta(teacher.G, n);
        ShouldBeMeta(teacher.Set.TopIds, n, Math.Min(options.Incompleteness.TopKBase, Vocab));
        var kl = TargetedCompletionTerms.DistillationKl(teacher.Q, ls);
        var pen = TargetedCompletionTerms.Penalty(ls, teacher.Set, teacher.W);
        var ce = TargetedCompletionTerms.CrossEntropy(ls, labels);
        var util = TargetedCompletionTerms.UtilityKl(la, ls);
        foreach (var term in new[] { kl, pen, ce, util }) ShouldBeMeta(term, n);
        var loss = ce.sum().add(kl.sum(), Scalars.One).add(pen.sum(), Scalars.One).add(util.sum(), Scalars.One);
        loss.backward();
        foreach (var (name, p) in trainable)
        {
            p.grad.Should().NotBeNull(name);
            p.grad!.device_type.Should().Be(DeviceType.META, name);
        }
        using var optimizer = new DeepAlign.Training.AdamW(trainable, 0.9, 0.999, 1e-8, weightDecay: 0.0);
        optimizer.Step(1e-4);
        optimizer.StateTensors().Should().OnlyContain(s => s.Tensor.device_type == DeviceType.META);
        teacher.Set.Dispose();
    }
}
