using DeepAlign.Method;
using DeepAlign.Method.Detection;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>The gradient signal probe against a naive reference (one forward and one backward per position).</summary>
public class GradientProbeTests
{
    /// <summary>Reference: for each j, a fresh forward over the whole sequence, loss_j.backward() into .grad of the
    /// selected parameters (all others frozen), L2 norm over them.</summary>
    private static double[] NaiveNorms(DeepAlign.Models.ICausalLanguageModel model, ISet<string> names, ProfileInput input, int maxPositions)
    {
        var all = model.NamedParameters().ToList();
        foreach (var (n, p) in all) p.requires_grad = names.Contains(n);
        var ids = input.PromptIds.Concat(input.ResponseIds).ToArray();
        int p0 = input.PromptIds.Count, jn = Math.Min(maxPositions, input.ResponseIds.Count);
        var result = new double[jn];
        for (int j = 0; j < jn; j++)
        {
            using var scope = NewDisposeScope();
            foreach (var (_, p) in all) p.grad?.zero_();
            var logits = model.Forward(tensor(ids, [1, ids.Length]));
            var lp = logits[0, p0 + j - 1].log_softmax(-1);
            var loss = -lp[ids[p0 + j]];
            loss.backward();
            double sq = 0;
            foreach (var (n, p) in all)
                if (names.Contains(n)) sq += p.grad!.pow(2).sum().item<float>();
            result[j] = Math.Sqrt(sq);
        }
        foreach (var (_, p) in all) { p.grad?.zero_(); p.requires_grad = true; }
        return result;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Norms_match_the_naive_reference_and_selection_follows_the_head(bool tied)
    {
        var config = TinyModelFactory.LlamaConfig(vocabSize: 48, hiddenSize: 32, layers: 4, heads: 4, kvHeads: 2, intermediateSize: 64,
            tieWordEmbeddings: tied, initializerRange: 0.1);
        using var model = TinyModelFactory.Create(config, seed: 21);
        var inputs = new[] { new ProfileInput([1, 5, 9, 2], [7, 8, 11, 30, 4, 6]), new ProfileInput([3, 2], [12, 40]) };
        var options = new GradientProbeOptions { MaxPositions = 5, LastLayers = 2 };
        var result = GradientSignalProbe.Run(model, inputs, options);

        var names = result.ParameterNames.ToHashSet();
        names.Should().OnlyContain(n => n.StartsWith("model.layers.2.") || n.StartsWith("model.layers.3.") || n == (tied ? "model.embed_tokens.weight" : "lm_head.weight"));
        names.Should().Contain(tied ? "model.embed_tokens.weight" : "lm_head.weight");
        names.Should().Contain("model.layers.2.self_attn.q_proj.weight").And.Contain("model.layers.3.mlp.down_proj.weight");
        names.Should().NotContain("model.layers.1.self_attn.q_proj.weight").And.NotContain("model.norm.weight");

        var n1 = NaiveNorms(model, names, inputs[0], 5);
        var n2 = NaiveNorms(model, names, inputs[1], 5);
        result.Sequences.Should().Be(2);
        result.ByPosition.Select(p => p.N).Should().Equal(2, 2, 1, 1, 1);
        result.ByPosition[0].Norm.Mean.Should().BeApproximately((n1[0] + n2[0]) / 2, 1e-4 * n1[0]);
        result.ByPosition[1].Norm.Mean.Should().BeApproximately((n1[1] + n2[1]) / 2, 1e-4 * n1[1]);
        for (int j = 2; j < 5; j++) result.ByPosition[j].Norm.Mean.Should().BeApproximately(n1[j], 1e-4 * n1[j]);
        // SE across two sequences = |a - b| / 2.
        result.ByPosition[0].Norm.StdErr.Should().BeApproximately(Math.Abs(n1[0] - n2[0]) / 2, 1e-4 * n1[0]);
        result.ByPosition.Sum(p => p.Share).Should().BeApproximately(1, 1e-12);
        result.ByPosition[2].Share.Should().BeApproximately(n1[2] / result.MeanNorms.Sum(), 1e-6);
        PositionWeights.TableFromProbe(result.MeanNorms).Should().HaveCount(5);

        // The model's flags are restored.
        model.NamedParameters().Should().OnlyContain(p => p.Parameter.requires_grad);
    }

    [Fact]
    public void A_model_without_hugging_face_names_is_refused()
    {
        var table = TableCausalLanguageModel.CreateBuilder(4).Build();
        FluentActions.Invoking(() => GradientSignalProbe.Run(table, [new ProfileInput([1], [2])]))
            .Should().Throw<ArgumentException>().WithMessage("*Hugging Face parameter names*");
        FluentActions.Invoking(() => new GradientProbeOptions { MaxPositions = 0 }.Validate()).Should().Throw<ArgumentException>().WithMessage("*MaxPositions*");
    }
}
