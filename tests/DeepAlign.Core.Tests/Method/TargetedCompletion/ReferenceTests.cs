using System.Text.Json;
using DeepAlign.Method;
using DeepAlign.Method.TargetedCompletion;
using DeepAlign.Models;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Checkpoints;
using DeepAlign.Method.Baselines;
using static DeepAlign.Tests.Method.MethodTestHelpers;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.TargetedCompletion;

/// <summary>
/// Every loss term's value and gradient against the independent PyTorch reference tests/scripts/targeted/reference.py
/// (tiny Llama student/aligned/base folders; a mixed batch with harmful prefixes of K_pre = 3, 0 and all of h).
/// </summary>
public sealed class ReferenceTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "targeted");
    private static readonly JsonElement Ref = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "reference.json"))).RootElement.Clone();

    internal static List<TrainingExample> Rows() => Ref.GetProperty("rows").EnumerateArray().Select((r, i) => new TrainingExample
    {
        Ids = Longs(r.GetProperty("ids")),
        Targets = Bools(r.GetProperty("targets")),
        ResponseStart = r.GetProperty("response_start").GetInt32(),
        ForcedPrefixLength = r.GetProperty("k_pre").GetInt32(),
        Source = r.GetProperty("source").GetString()!,
        Location = $"reference row {i}",
    }).ToList();

    private static TargetedCompletionOptions OptionsFor(JsonElement o) => new()
    {
        Incompleteness = new IncompletenessOptions { Tau = o.GetProperty("tau").GetDouble(), TopKBase = o.GetProperty("top_k_base").GetInt32() },
        Teacher = new HybridTeacherOptions
        {
            MaxMix = o.GetProperty("max_mix").GetDouble(),
            ConstantMix = o.GetProperty("constant_mix").ValueKind == JsonValueKind.Null ? null : o.GetProperty("constant_mix").GetDouble(),
            TeacherAlpha = o.GetProperty("teacher_alpha").GetDouble(),
            PlausibilityBeta = o.GetProperty("plausibility_beta").GetDouble(),
        },
        PositionWeights = new PositionWeightOptions
        {
            Rho = o.GetProperty("rho").GetDouble(), MaxWeight = o.GetProperty("max_weight").GetDouble(), RampLength = o.GetProperty("ramp_length").GetInt32(),
        },
        ProbeNorms = o.GetProperty("probe_norms").ValueKind == JsonValueKind.Null ? null : Doubles(o.GetProperty("probe_norms")),
        DistillationWeight = o.GetProperty("lambda_kd").GetDouble(),
        PenaltyWeight = o.GetProperty("lambda_pen").GetDouble(),
        UtilityWeight = o.GetProperty("lambda_util").GetDouble(),
        UtilityAnchor = o.GetProperty("utility").GetString() == "kl" ? UtilityAnchor.AlignedKl : UtilityAnchor.CrossEntropy,
    };

    private sealed class Models : IDisposable
    {
        public readonly ICausalLanguageModel Student = CausalLanguageModel.FromPretrained(Path.Combine(Dir, "student"));
        public readonly ICausalLanguageModel Aligned = CausalLanguageModel.FromPretrained(Path.Combine(Dir, "aligned"));
        public readonly ICausalLanguageModel Base = CausalLanguageModel.FromPretrained(Path.Combine(Dir, "base"));
        public void Dispose() { Student.Dispose(); Aligned.Dispose(); Base.Dispose(); }
    }

    /// <summary>Runs one objective on the reference batch; returns its output and the student's gradients by name.</summary>
    private static (double Loss, Dictionary<string, double> Terms, Dictionary<string, Tensor> Grads) Run(ITrainingObjective objective, Models m)
    {
        using var batch = BatchCollator.Collate(Rows(), 0, CPU);
        var teachers = new Dictionary<string, ICausalLanguageModel> { ["aligned"] = m.Aligned, ["base"] = m.Base };
        foreach (var (_, p) in m.Student.NamedParameters()) p.grad?.zero_();
        m.Student.SetTrainingMode(false);
        var ctx = new ObjectiveContext { Student = m.Student, Teachers = teachers, Totals = objective.CountTokens(batch), Step = 0, MicroBatch = 0, Random = new Random(0) };
        using var scope = NewDisposeScope();
        var output = objective.Compute(batch, ctx);
        output.Loss.backward();
        var grads = m.Student.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.grad!.clone().MoveToOuterDisposeScope());
        return (output.Loss.item<float>(), output.Terms.ToDictionary(kv => kv.Key, kv => (double)kv.Value.item<float>()), grads);
    }

    private static void AssertGrads(Dictionary<string, Tensor> actual, string file)
    {
        var expected = TensorFile.Read(Path.Combine(Dir, file));
        expected.Keys.Should().BeEquivalentTo(actual.Keys, "every student parameter has a reference gradient");
        foreach (var (name, e) in expected)
        {
            double scale = e.abs().max().item<float>();
            double diff = (actual[name] - e).abs().max().item<float>();
            diff.Should().BeLessThanOrEqualTo(1e-5 + 2e-4 * scale, $"gradient of {name} (max |ref| {scale})");
            e.Dispose();
        }
        foreach (var t in actual.Values) t.Dispose();
    }

    [Theory]
    [InlineData("probe")]
    [InlineData("ramp")]
    public void Targeted_completion_loss_terms_and_gradients_match_the_reference(string name)
    {
        var c = Ref.GetProperty("cases").GetProperty(name);
        using var m = new Models();
        var (loss, terms, grads) = Run(new TargetedCompletionObjective(OptionsFor(c.GetProperty("options"))), m);
        foreach (var term in new[] { "ce", "kl", "pen", "util" })
            terms[term].Should().BeApproximately(c.GetProperty("terms").GetProperty(term).GetDouble(), 2e-5 + 1e-4 * Math.Abs(c.GetProperty("terms").GetProperty(term).GetDouble()), term);
        loss.Should().BeApproximately(c.GetProperty("loss").GetDouble(), 1e-4, "the combined loss");
        AssertGrads(grads, $"grads_{name}.safetensors");
    }

    [Theory]
    [InlineData("probe")]
    [InlineData("ramp")]
    public void Teacher_side_quantities_per_target_match_the_reference(string name)
    {
        var c = Ref.GetProperty("cases").GetProperty(name);
        var per = c.GetProperty("teacher");
        var options = OptionsFor(c.GetProperty("options"));
        using var m = new Models();
        using var scope = NewDisposeScope();
        using var batch = BatchCollator.Collate(Rows(), 0, CPU);
        var mask = ObjectiveRows.PredictMask(batch, TrainingSources.Harmful);
        var la = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(m.Aligned.Forward(batch.InputIds, batch.AttentionMask), mask));
        var lb = PositionStatistics.LogSoftmax(ObjectiveRows.Predicting(m.Base.Forward(batch.InputIds, batch.AttentionMask), mask));
        var j = ObjectiveRows.Positions(batch, mask);
        // K_pre masking: the harmful rows have K_pre = 3, 0, 4 with safe responses of 4, 5, 3 tokens.
        ToLongs(j).Should().Equal(Longs(per.GetProperty("j")));
        ToLongs(j).Should().Equal(4, 5, 6, 7, 1, 2, 3, 4, 5, 5, 6, 7);
        var t = TargetedCompletionObjective.Teacher(la, lb, j, options);
        AssertClose(t.Set.Incompleteness, Doubles(per.GetProperty("u")), "U_j", 1e-5, 1e-4);
        AssertClose(t.G, Doubles(per.GetProperty("g")), "g_j", 1e-5, 1e-4);
        AssertClose(t.W, Doubles(per.GetProperty("w")), "w_j", 1e-6, 1e-6);
        AssertClose(t.Q, Doubles2D(per.GetProperty("q")), "q_j", 1e-6, 1e-4);
        ToLongs(t.Set.TopIds).Should().Equal(Doubles2D(per.GetProperty("top_ids")).SelectMany(x => x).Select(x => (long)x), "T_j");
        ToBools(t.Set.Members).Should().Equal(Bools2D(per.GetProperty("members")).SelectMany(x => x), "B_j membership");
        AssertClose(TargetedCompletionTerms.PenaltyCosts(t.Set), Doubles2D(per.GetProperty("c")), "c_j(v)", 1e-6, 1e-4);
    }

    [Fact]
    public void Hybrid_teacher_at_g_zero_g_max_and_intermediate_U_matches_the_reference()
    {
        var r = Ref.GetProperty("teacher_rows");
        using var scope = NewDisposeScope();
        var la = PositionStatistics.LogSoftmax(Float2D(r.GetProperty("aligned_logits")));
        var lb = PositionStatistics.LogSoftmax(Float2D(r.GetProperty("base_logits")));
        var options = new TargetedCompletionOptions { Incompleteness = new IncompletenessOptions { TopKBase = r.GetProperty("top_k_base").GetInt32() } };
        var t = TargetedCompletionObjective.Teacher(la, lb, tensor(new long[] { 1, 2, 3 }), options);
        var u = ToDoubles(t.Set.Incompleteness);
        u[0].Should().Be(0.0, "row 0: the aligned model removed all of the base's preferred mass");
        u[1].Should().Be(1.0, "row 1: identical models");
        AssertClose(t.Set.Incompleteness, Doubles(r.GetProperty("u")), "U", 1e-6, 1e-5);
        var g = ToDoubles(t.G);
        g[0].Should().Be(0.0);
        g[1].Should().Be(0.5, "g = g_max at U = 1");
        AssertClose(t.G, Doubles(r.GetProperty("g")), "g", 1e-6, 1e-5);
        AssertClose(t.Q, Doubles2D(r.GetProperty("q")), "q", 1e-6, 1e-5);
        // At g = 0 the teacher is the aligned model itself.
        AssertClose(t.Q[0], ToDoubles(la[0].exp()), "q at g = 0 equals p_a", 0, 0);
    }

    [Fact]
    public void Constrained_objective_value_and_gradient_match_the_reference()
    {
        var c = Ref.GetProperty("constrained");
        using var m = new Models();
        var (loss, terms, grads) = Run(new ConstrainedObjective(), m);
        loss.Should().BeApproximately(c.GetProperty("loss").GetDouble(), 1e-4);
        terms["constrained"].Should().BeApproximately(loss, 1e-6);
        AssertGrads(grads, "grads_constrained.safetensors");
    }

    [Fact]
    public void Augmentation_value_and_gradient_match_the_reference()
    {
        var c = Ref.GetProperty("augmentation");
        using var m = new Models();
        var (loss, terms, grads) = Run(new AugmentationObjective(), m);
        loss.Should().BeApproximately(c.GetProperty("loss").GetDouble(), 1e-4);
        terms["ce_harmful"].Should().BeApproximately(c.GetProperty("ce_harmful").GetDouble(), 1e-4);
        terms["ce_benign"].Should().BeApproximately(c.GetProperty("ce_benign").GetDouble(), 1e-4);
        AssertGrads(grads, "grads_augmentation.safetensors");
    }

    [Fact]
    public void Splitting_the_batch_into_micro_batches_gives_the_same_loss_and_gradient()
    {
        var c = Ref.GetProperty("cases").GetProperty("probe");
        var objective = new TargetedCompletionObjective(OptionsFor(c.GetProperty("options")));
        using var m = new Models();
        var rows = Rows();
        var parts = new[] { rows.Take(2).ToList(), rows.Skip(2).Take(3).ToList(), rows.Skip(5).ToList() };
        var batches = parts.Select(p => BatchCollator.Collate(p, 0, CPU)).ToList();
        var totals = new TokenCounts();
        foreach (var b in batches) totals.Add(objective.CountTokens(b));
        var teachers = new Dictionary<string, ICausalLanguageModel> { ["aligned"] = m.Aligned, ["base"] = m.Base };
        double loss = 0;
        for (int i = 0; i < batches.Count; i++)
        {
            using var scope = NewDisposeScope();
            var output = objective.Compute(batches[i], new ObjectiveContext { Student = m.Student, Teachers = teachers, Totals = totals, Step = 0, MicroBatch = i, Random = new Random(0) });
            output.Loss.backward();
            loss += output.Loss.item<float>();
        }
        foreach (var b in batches) b.Dispose();
        loss.Should().BeApproximately(c.GetProperty("loss").GetDouble(), 1e-4);
        AssertGrads(m.Student.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.grad!.clone()), "grads_probe.safetensors");
    }
}
