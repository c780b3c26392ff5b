using System.Text.Json;
using DeepAlign.Models;
using DeepAlign.Models.Common;
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

/// <summary>
/// <see cref="DpoObjective"/> against the independent PyTorch reference tests/scripts/dpo/reference.py (tiny Llama
/// policy and reference folders, six pre-tokenized pairs of different lengths), plus hand-computed invariants.
/// </summary>
public sealed class DpoTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "dpo");
    private static readonly JsonElement Ref = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "reference.json"))).RootElement.Clone();
    private static readonly string PolicyDir = Path.Combine(Dir, "policy");
    private static readonly string ReferenceDir = Path.Combine(Dir, "reference");

    public DpoTests() => torch.set_num_threads(1);

    private static TrainingData Data() =>
        TrainingData.Single(JsonlDatasetReader.ReadFile(Path.Combine(Dir, "data.jsonl")), new PreferenceExampleBuilder(), 0, shuffle: false);

    private static IReadOnlyList<TrainingExample> Pairs() => Data().Next(6);

    private static DpoOptions OptionsFor(JsonElement o) => new()
    {
        Beta = o.GetProperty("beta").GetDouble(),
        LabelSmoothing = o.GetProperty("label_smoothing").GetDouble(),
        LossType = o.GetProperty("loss_type").GetString() == "ipo" ? DpoLossType.Ipo : DpoLossType.Sigmoid,
    };

    private static Dictionary<string, ICausalLanguageModel> Teachers(ICausalLanguageModel reference) => new() { [DpoObjective.ReferenceTeacher] = reference };

    private static ObjectiveContext Context(ICausalLanguageModel student, ICausalLanguageModel reference, TokenCounts totals, int micro = 0) =>
        new() { Student = student, Teachers = Teachers(reference), Totals = totals, Step = 0, MicroBatch = micro, Random = new Random(0) };

    /// <summary>Runs the objective over <paramref name="parts"/> as the micro-batches of one step; returns loss, terms and gradients.</summary>
    private static (double Loss, Dictionary<string, double> Terms, Dictionary<string, Tensor> Grads) Run(DpoObjective objective, ICausalLanguageModel student,
        ICausalLanguageModel reference, IEnumerable<IReadOnlyList<TrainingExample>> parts)
    {
        var batches = parts.Select(p => BatchCollator.Collate(p, 0, CPU)).ToList();
        var totals = new TokenCounts();
        foreach (var b in batches) totals.Add(objective.CountTokens(b));
        foreach (var (_, p) in student.NamedParameters()) p.grad?.zero_();
        double loss = 0;
        var terms = new Dictionary<string, double>();
        for (int i = 0; i < batches.Count; i++)
        {
            using var scope = NewDisposeScope();
            var output = objective.Compute(batches[i], Context(student, reference, totals, i));
            output.Loss.backward();
            loss += output.Loss.item<float>();
            foreach (var (k, v) in output.Terms) terms[k] = terms.GetValueOrDefault(k) + v.item<float>();
        }
        foreach (var b in batches) b.Dispose();
        var grads = student.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.grad!.clone());
        return (loss, terms, grads);
    }

    private static void AssertGrads(Dictionary<string, Tensor> actual, string file)
    {
        var expected = TensorFile.Read(Path.Combine(Dir, file));
        expected.Keys.Should().BeEquivalentTo(actual.Keys, "every policy parameter has a reference gradient");
        foreach (var (name, e) in expected)
        {
            double scale = e.abs().max().item<float>();
            scale.Should().BeGreaterThan(0, $"the reference gradient of {name} is not trivially zero");
            double diff = (actual[name] - e).abs().max().item<float>();
            diff.Should().BeLessThanOrEqualTo(1e-6 + 2e-4 * scale, $"gradient of {name} (max |ref| {scale})");
            e.Dispose();
        }
        foreach (var t in actual.Values) t.Dispose();
    }

    private static void AssertMetrics(Dictionary<string, double> terms, JsonElement expected, double tol = 2e-5)
    {
        terms.Keys.Should().BeEquivalentTo(DpoMetrics.All);
        foreach (var name in DpoMetrics.All)
        {
            double e = expected.GetProperty(name).GetDouble();
            terms[name].Should().BeApproximately(e, tol + 1e-5 * Math.Abs(e), name);
        }
    }

    [Theory]
    [InlineData("sigmoid")]
    [InlineData("cdpo")]
    [InlineData("ipo")]
    public void Loss_metrics_and_gradients_of_a_padded_batch_match_the_reference(string name)
    {
        var c = Ref.GetProperty("cases").GetProperty(name);
        using var policy = CausalLanguageModel.FromPretrained(PolicyDir);
        using var reference = CausalLanguageModel.FromPretrained(ReferenceDir);
        var (loss, terms, grads) = Run(new DpoObjective(OptionsFor(c.GetProperty("options"))), policy, reference, new[] { Pairs() });
        loss.Should().BeApproximately(c.GetProperty("loss").GetDouble(), 1e-5 + 1e-5 * Math.Abs(c.GetProperty("loss").GetDouble()));
        AssertMetrics(terms, c.GetProperty("metrics"));
        AssertGrads(grads, $"grads_{name}.safetensors");
    }

    [Fact]
    public void Sequence_log_probs_of_padded_rows_equal_each_sequence_run_alone_in_the_reference()
    {
        var per = Ref.GetProperty("cases").GetProperty("sigmoid").GetProperty("per_pair");
        using var policy = CausalLanguageModel.FromPretrained(PolicyDir);
        using var reference = CausalLanguageModel.FromPretrained(ReferenceDir);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var batch = BatchCollator.Collate(Pairs(), 0, CPU);
        batch.Length.Should().Be(12, "the longest sequences have 6 + 6 and 5 + 7 tokens; the other rows are padded");
        double[] Values(Tensor t) => t.to_type(ScalarType.Float64).data<double>().ToArray();
        double[] Expected(string key) => per.GetProperty(key).EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var p = Values(DpoObjective.SequenceLogProbs(policy.Forward(batch.InputIds, batch.AttentionMask), batch));
        var r = Values(DpoObjective.SequenceLogProbs(reference.Forward(batch.InputIds, batch.AttentionMask), batch));
        p.Should().Equal(Expected("policy_chosen").Concat(Expected("policy_rejected")), (a, b) => Math.Abs(a - b) < 2e-5);
        r.Should().Equal(Expected("reference_chosen").Concat(Expected("reference_rejected")), (a, b) => Math.Abs(a - b) < 2e-5);
    }

    [Theory]
    [InlineData("sigmoid")]
    [InlineData("ipo")]
    public void Uneven_micro_batches_of_one_step_give_the_whole_batch_loss_metrics_and_gradients(string name)
    {
        var c = Ref.GetProperty("cases").GetProperty(name);
        using var policy = CausalLanguageModel.FromPretrained(PolicyDir);
        using var reference = CausalLanguageModel.FromPretrained(ReferenceDir);
        var pairs = Pairs();
        var parts = new[] { pairs.Take(1).ToList(), pairs.Skip(1).Take(3).ToList(), pairs.Skip(4).ToList() };
        var (loss, terms, grads) = Run(new DpoObjective(OptionsFor(c.GetProperty("options"))), policy, reference, parts);
        loss.Should().BeApproximately(c.GetProperty("loss").GetDouble(), 1e-5 + 1e-5 * Math.Abs(c.GetProperty("loss").GetDouble()));
        AssertMetrics(terms, c.GetProperty("metrics"));
        AssertGrads(grads, $"grads_{name}.safetensors");
    }

    private static TrainerOptions TrainerOptionsFrom(JsonElement t) => new()
    {
        MaxSteps = t.GetProperty("steps").GetInt32(),
        MicroBatchSize = t.GetProperty("micro_batch").GetInt32(),
        GradientAccumulationSteps = t.GetProperty("accumulation").GetInt32(),
        LearningRate = t.GetProperty("lr").GetDouble(),
        Beta1 = t.GetProperty("beta1").GetDouble(),
        Beta2 = t.GetProperty("beta2").GetDouble(),
        Epsilon = t.GetProperty("eps").GetDouble(),
        MaxGradNorm = t.GetProperty("max_grad_norm").GetDouble(),
        Schedule = LearningRateScheduleKind.Constant,
        WeightDecay = 0,
        PadTokenId = 0,
    };

    [Fact]
    public void The_trainer_with_accumulation_and_clipping_matches_the_reference_run_step_by_step()
    {
        var t = Ref.GetProperty("trainer");
        var o = t.GetProperty("options");
        var steps = t.GetProperty("steps").EnumerateArray().ToArray();
        using var student = CausalLanguageModel.FromPretrained(ReferenceDir);
        using var reference = CausalLanguageModel.FromPretrained(ReferenceDir);
        using var trainer = new Trainer(student, new DpoObjective(OptionsFor(o)), TrainerOptionsFrom(o), Teachers(reference));
        var result = trainer.Train(Data());
        result.History.Should().HaveCount(steps.Length);
        for (int i = 0; i < steps.Length; i++)
        {
            var h = result.History[i];
            h.Loss.Should().BeApproximately(steps[i].GetProperty("loss").GetDouble(), 2e-5, $"loss of step {i + 1}");
            h.GradientNorm.Should().BeApproximately(steps[i].GetProperty("grad_norm").GetDouble(), 1e-4 * Math.Max(1, steps[i].GetProperty("grad_norm").GetDouble()), $"grad norm of step {i + 1}");
            AssertMetrics(h.Terms.ToDictionary(kv => kv.Key, kv => kv.Value), steps[i].GetProperty("metrics"), 5e-5);
            int perStep = o.GetProperty("micro_batch").GetInt32() * o.GetProperty("accumulation").GetInt32();
            long responseTokens = Enumerable.Range(i * perStep, perStep).Select(k => Ref.GetProperty("pairs")[k % 6])
                .Sum(pair => (long)pair.GetProperty("chosen").GetArrayLength() + pair.GetProperty("rejected").GetArrayLength());
            h.TargetTokens.Should().Be(responseTokens, "target tokens count both responses of every pair (the loss is normalised by pairs)");
        }
        steps[0].GetProperty("grad_norm").GetDouble().Should().BeGreaterThan(1.0, "the fixture exercises clipping");
        var expected = TensorFile.Read(Path.Combine(Dir, "trainer_final.safetensors"));
        foreach (var (name, p) in student.NamedParameters())
        {
            double scale = expected[name].abs().max().item<float>();
            double diff = p.sub(expected[name]).abs().max().item<float>();
            diff.Should().BeLessThan(2e-5 + 1e-4 * scale, $"final weight {name}");
        }
        foreach (var e in expected.Values) e.Dispose();
    }

    [Theory]
    [InlineData(DpoLossType.Sigmoid, 0.1, 0.0)]
    [InlineData(DpoLossType.Sigmoid, 0.5, 0.3)]
    [InlineData(DpoLossType.Ipo, 0.1, 0.0)]
    public void With_policy_equal_to_reference_the_rewards_are_zero_and_the_loss_is_its_value_at_zero(DpoLossType type, double beta, double smoothing)
    {
        using var student = CausalLanguageModel.FromPretrained(ReferenceDir);
        using var reference = CausalLanguageModel.FromPretrained(ReferenceDir);
        var (loss, terms, grads) = Run(new DpoObjective(new DpoOptions { LossType = type, Beta = beta, LabelSmoothing = smoothing }), student, reference, new[] { Pairs() });
        // h = 0: -(1 - eps) log(1/2) - eps log(1/2) = ln 2 for any eps; IPO: (0 - 1 / (2 beta))^2.
        double expected = type == DpoLossType.Ipo ? Math.Pow(1 / (2 * beta), 2) : Math.Log(2);
        loss.Should().BeApproximately(expected, 1e-6 * expected);
        terms[DpoMetrics.ChosenRewards].Should().Be(0);
        terms[DpoMetrics.RejectedRewards].Should().Be(0);
        terms[DpoMetrics.Margins].Should().Be(0);
        terms[DpoMetrics.Accuracies].Should().Be(0, "a tie is not a correct ranking (TRL: chosen > rejected)");
        grads.Values.Max(g => g.abs().max().item<float>()).Should().BeGreaterThan(0, "the loss still pushes the chosen response up at step 0");
        foreach (var g in grads.Values) g.Dispose();
    }

    [Fact]
    public void Pair_losses_match_hand_computed_values_and_are_not_symmetric_in_chosen_and_rejected()
    {
        using var scope = NewDisposeScope();
        Tensor T(params float[] v) => tensor(v);
        // Pair 0: r_w = -3 - -4 = 1, r_l = -5 - -4.5 = -0.5, h = 1.5; pair 1: r_w = -0.5, r_l = 0.25, h = -0.75.
        var pc = T(-3f, -2f); var pr = T(-5f, -1.75f); var rc = T(-4f, -1.5f); var rr = T(-4.5f, -2f);
        var nc = T(2f, 1f); var nr = T(4f, 5f);
        double Sig(double x) => 1 / (1 + Math.Exp(-x));
        double[] Values(Tensor t) => t.to_type(ScalarType.Float64).data<double>().ToArray();

        var sigmoid = Values(DpoObjective.PairLosses(pc, pr, rc, rr, nc, nr, new DpoOptions { Beta = 0.5 }));
        sigmoid.Should().Equal(new[] { -Math.Log(Sig(0.75)), -Math.Log(Sig(-0.375)) }, (a, b) => Math.Abs(a - b) < 1e-6);

        var cdpo = Values(DpoObjective.PairLosses(pc, pr, rc, rr, nc, nr, new DpoOptions { Beta = 0.5, LabelSmoothing = 0.1 }));
        cdpo[0].Should().BeApproximately(-0.9 * Math.Log(Sig(0.75)) - 0.1 * Math.Log(Sig(-0.75)), 1e-6);
        cdpo[1].Should().BeApproximately(-0.9 * Math.Log(Sig(-0.375)) - 0.1 * Math.Log(Sig(0.375)), 1e-6);

        // IPO, beta 0.5 (target 1): pair 0 h' = 1/2 - (-0.5)/4 = 0.625; pair 1 h' = -0.5/1 - 0.25/5 = -0.55.
        var ipo = Values(DpoObjective.PairLosses(pc, pr, rc, rr, nc, nr, new DpoOptions { Beta = 0.5, LossType = DpoLossType.Ipo }));
        ipo.Should().Equal(new[] { Math.Pow(0.625 - 1, 2), Math.Pow(-0.55 - 1, 2) }, (a, b) => Math.Abs(a - b) < 1e-6);

        var swapped = Values(DpoObjective.PairLosses(pr, pc, rr, rc, nr, nc, new DpoOptions { Beta = 0.5 }));
        swapped[0].Should().BeApproximately(-Math.Log(Sig(-0.75)), 1e-6, "swapping chosen and rejected flips the sign of h");
        swapped[0].Should().BeGreaterThan(sigmoid[0]);
    }

    [Fact]
    public void A_few_dpo_steps_raise_the_margin_and_the_reward_accuracy()
    {
        using var student = CausalLanguageModel.FromPretrained(PolicyDir);
        using var reference = CausalLanguageModel.FromPretrained(ReferenceDir);
        var options = new TrainerOptions { MaxSteps = 8, MicroBatchSize = 3, GradientAccumulationSteps = 2, LearningRate = 1e-2, Schedule = LearningRateScheduleKind.Constant, PadTokenId = 0 };
        using var trainer = new Trainer(student, new DpoObjective(), options, Teachers(reference));
        var pairs = Pairs();
        var (lossBefore, before) = trainer.EvaluateLoss(pairs);
        before[DpoMetrics.Accuracies].Should().BeApproximately(1 / 6.0, 1e-6, "the perturbed policy ranks one pair of six correctly");
        before[DpoMetrics.Margins].Should().BeLessThan(0);
        trainer.Train(Data());
        var (lossAfter, after) = trainer.EvaluateLoss(pairs);
        after[DpoMetrics.Margins].Should().BeGreaterThan(before[DpoMetrics.Margins] + 0.5);
        after[DpoMetrics.Margins].Should().BeGreaterThan(0);
        after[DpoMetrics.Accuracies].Should().BeGreaterThanOrEqualTo(5 / 6.0);
        lossAfter.Should().BeLessThan(lossBefore);
        lossAfter.Should().BeLessThan(Math.Log(2), "the pairs are now ranked right on average");
    }

    [Fact]
    public void Lora_with_the_adapters_disabled_reference_trains_like_lora_with_a_separate_reference_copy()
    {
        var lora = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = new[] { "q_proj", "v_proj", "down_proj" } };
        var options = new TrainerOptions { MaxSteps = 3, MicroBatchSize = 2, GradientAccumulationSteps = 1, LearningRate = 1e-2, Schedule = LearningRateScheduleKind.Constant, PadTokenId = 0 };

        (TrainingResult Result, double Margin) Train(bool view, out Tensor studentLogits, out Tensor viewLogits)
        {
            using var student = CausalLanguageModel.FromPretrained(ReferenceDir);
            LoraApplier.Apply(student, lora);
            using var copy = CausalLanguageModel.FromPretrained(ReferenceDir);
            ICausalLanguageModel reference = view ? new AdaptersDisabledModel(student) : copy;
            using var trainer = new Trainer(student, new DpoObjective(), options, Teachers(reference));
            var result = trainer.Train(Data());
            var margin = trainer.EvaluateLoss(Pairs()).Terms[DpoMetrics.Margins];
            using var batch = BatchCollator.Collate(Pairs(), 0, CPU);
            using (no_grad())
            {
                studentLogits = student.Forward(batch.InputIds, batch.AttentionMask);
                using var copyLogits = copy.Forward(batch.InputIds, batch.AttentionMask);
                viewLogits = new AdaptersDisabledModel(student).Forward(batch.InputIds, batch.AttentionMask);
                viewLogits.sub(copyLogits).abs().max().item<float>().Should().BeLessThan(1e-5f, "with its adapters off the trained student is the starting model");
            }
            return (result, margin);
        }

        var (withView, viewMargin) = Train(view: true, out var s1, out var v1);
        var (withCopy, copyMargin) = Train(view: false, out var s2, out var v2);
        withView.History[0].Loss.Should().BeApproximately(Math.Log(2), 1e-6, "fresh adapters (B = 0) leave the policy equal to the reference");
        withView.History.Select(h => h.Loss).Should().Equal(withCopy.History.Select(h => h.Loss), (a, b) => Math.Abs(a - b) < 1e-5);
        viewMargin.Should().BeGreaterThan(0, "training on the adapters separated chosen from rejected");
        viewMargin.Should().BeApproximately(copyMargin, 1e-5);
        s1.sub(v1).abs().max().item<float>().Should().BeGreaterThan(1e-3f, "the adapters trained");
        s1.sub(s2).abs().max().item<float>().Should().BeLessThan(1e-4f);
        foreach (var x in new[] { s1, v1, s2, v2 }) x.Dispose();
    }

    [Fact]
    public void The_adapters_disabled_view_restores_mode_and_switches_and_refuses_a_model_without_adapters()
    {
        using var model = CausalLanguageModel.FromPretrained(ReferenceDir);
        var none = () => new AdaptersDisabledModel(model);
        none.Should().Throw<ArgumentException>().WithMessage("*no LoRA adapters*");
        LoraApplier.Apply(model, new LoraOptions { Rank = 2, TargetModules = new[] { "q_proj" } });
        var view = new AdaptersDisabledModel(model);
        view.TrainableParameters().Should().BeEmpty();
        view.NamedParameters().Select(p => p.Name).Should().NotContain(n => n.Contains("lora_"));
        model.SetTrainingMode(true);
        using var ids = tensor(new long[] { 3, 4, 5 }, dtype: ScalarType.Int64).unsqueeze(0);
        using var logits = view.Forward(ids);
        logits.requires_grad.Should().BeFalse();
        LoraApplier.Adapters(model).Should().OnlyContain(a => a.Adapter.Enabled && a.Adapter.training, "the student's adapters and training mode are restored");
        LoraApplier.Merge(model);
        var merged = () => view.Forward(ids);
        merged.Should().Throw<InvalidOperationException>().WithMessage("*no LoRA adapters any more*");
    }

    [Fact]
    public void Single_sequence_batches_and_a_missing_reference_are_rejected_clearly()
    {
        using var model = CausalLanguageModel.FromPretrained(ReferenceDir);
        var objective = new DpoObjective();
        using var single = BatchCollator.Collate(new[] { new TrainingExample { Ids = new long[] { 1, 2 }, Targets = new[] { false, true }, ResponseStart = 1, Location = "s:1" } }, 0, CPU);
        var count = () => objective.CountTokens(single);
        count.Should().Throw<InvalidOperationException>().WithMessage("*needs preference pairs*s:1*PreferenceExampleBuilder*");
        var noReference = () => new Trainer(model, objective, new TrainerOptions());
        noReference.Should().Throw<ArgumentException>().WithMessage("*'dpo' needs the frozen model 'reference'*");
    }

    [Theory]
    [InlineData("Beta", 0.0, null)]
    [InlineData("Beta", double.PositiveInfinity, null)]
    [InlineData("LabelSmoothing", 0.5, null)]
    [InlineData("LabelSmoothing", -0.1, null)]
    [InlineData("LabelSmoothing", 0.1, DpoLossType.Ipo)]
    [InlineData("LossType", 0.0, (DpoLossType)7)]
    [InlineData("VocabularySize", 0.0, null)]
    public void Options_validation_names_the_field(string field, double value, DpoLossType? type)
    {
        var o = new DpoOptions();
        o = field switch
        {
            "Beta" => o with { Beta = value },
            "LabelSmoothing" => o with { LabelSmoothing = value, LossType = type ?? DpoLossType.Sigmoid },
            "LossType" => o with { LossType = type!.Value },
            _ => o with { VocabularySize = (int)value },
        };
        var act = () => new DpoObjective(o);
        act.Should().Throw<ArgumentException>().Where(e => e.ParamName == field).WithMessage($"DpoOptions.{field}*");
        new DpoOptions().Should().BeEquivalentTo(new DpoOptions { Beta = 0.1, LossType = DpoLossType.Sigmoid, LabelSmoothing = 0, DisableDropout = true, VocabularySize = null });
    }
}

/// <summary><see cref="DpoTrainer.TrainFromFolders"/> on the DPO fixture folders (pre-tokenized lines, no tokenizer).</summary>
public sealed class DpoTrainerTests : IDisposable
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "dpo");
    private readonly string _tmp = Path.Combine(Path.GetTempPath(), "deepalign-dpo-" + Guid.NewGuid().ToString("N"));

    public DpoTrainerTests() => torch.set_num_threads(1);

    public void Dispose()
    {
        try { Directory.Delete(_tmp, true); } catch (IOException) { }
    }

    private static DpoTrainerOptions Options(int steps, LoraOptions? lora = null) => new()
    {
        Trainer = DpoTrainer.DefaultTrainerOptions with { MaxSteps = steps, MicroBatchSize = 3, LearningRate = 1e-2, Schedule = LearningRateScheduleKind.Constant, PadTokenId = 0 },
        Lora = lora,
    };

    private static double MaxWeightChange(string trained)
    {
        using var a = CausalLanguageModel.FromPretrained(Path.Combine(Dir, "reference"));
        using var b = CausalLanguageModel.FromPretrained(trained);
        var bw = b.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        return a.NamedParameters().Max(p => p.Parameter.sub(bw[p.Name]).abs().max().item<float>());
    }

    [Fact]
    public void Full_fine_tuning_from_folders_starts_at_ln2_exports_and_resumes()
    {
        var paths = new DpoPaths(Path.Combine(Dir, "reference"), Path.Combine(Dir, "data.jsonl"), Path.Combine(_tmp, "full"));
        var run = DpoTrainer.TrainFromFolders(paths, Options(2), CPU);
        run.AdapterDirectory.Should().BeNull();
        run.Training.History[0].Loss.Should().BeApproximately(Math.Log(2), 1e-6, "the reference defaults to the starting model");
        run.Training.History[0].Terms.Keys.Should().BeEquivalentTo(DpoMetrics.All);
        File.Exists(Path.Combine(run.OutputDirectory, "model.safetensors")).Should().BeTrue();
        MaxWeightChange(run.OutputDirectory).Should().BeGreaterThan(1e-3);
        var again = DpoTrainer.TrainFromFolders(paths, Options(3), CPU);
        again.Training.ResumedFromStep.Should().Be(2);
        again.Training.History.Should().ContainSingle().Which.Step.Should().Be(3);
    }

    [Fact]
    public void Lora_from_folders_uses_the_adapters_disabled_reference_and_an_explicit_reference_folder_is_used()
    {
        var lora = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = new[] { "q_proj", "v_proj" } };
        var paths = new DpoPaths(Path.Combine(Dir, "reference"), Path.Combine(Dir, "data.jsonl"), Path.Combine(_tmp, "lora"));
        var run = DpoTrainer.TrainFromFolders(paths, Options(2, lora), CPU);
        run.Training.History[0].Loss.Should().BeApproximately(Math.Log(2), 1e-6);
        File.Exists(Path.Combine(run.AdapterDirectory!, LoraApplier.AdapterWeightsFile)).Should().BeTrue();
        MaxWeightChange(run.OutputDirectory).Should().BeGreaterThan(1e-4, "the merged adapters changed the exported weights");

        var other = paths with { OutputDirectory = Path.Combine(_tmp, "other-ref"), Reference = Path.Combine(Dir, "policy") };
        var withRef = DpoTrainer.TrainFromFolders(other, Options(1, lora), CPU);
        withRef.Training.History[0].Loss.Should().NotBeApproximately(Math.Log(2), 1e-3, "the policy folder is a different reference");
        withRef.Training.History[0].Terms[DpoMetrics.ChosenRewards].Should().NotBe(0);
    }
}
