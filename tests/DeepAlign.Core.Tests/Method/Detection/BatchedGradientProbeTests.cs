using DeepAlign.Method.Detection;
using DeepAlign.Models.Lora;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Method.Detection;

/// <summary>The batched probe (one forward, one hand-written batched backward) against the reference implementation
/// (one autograd backward per position): equal norms within 1e-5.</summary>
public class BatchedGradientProbeTests
{
    private static ProfileInput[] Inputs(int vocab, int seed)
    {
        var rng = new Random(seed);
        long Id() => rng.Next(vocab);
        return new[]
        {
            new ProfileInput(Enumerable.Range(0, 5).Select(_ => Id()).ToArray(), Enumerable.Range(0, 11).Select(_ => Id()).ToArray()),
            new ProfileInput(new[] { Id() }, Enumerable.Range(0, 3).Select(_ => Id()).ToArray()),          // one-token prompt
            new ProfileInput(Enumerable.Range(0, 3).Select(_ => Id()).ToArray(), new[] { 7L, 7L, 9L, 7L, 7L, 2L, 7L, 7L, 9L }), // repeated ids
        };
    }

    private static (GradientProbeResult Batched, GradientProbeResult Reference) Both(DeepAlign.Models.ICausalLanguageModel model, ProfileInput[] inputs,
        GradientProbeOptions options, int? vocabSize, int rowsPerChunk)
    {
        int savedRows = BatchedGradientProbe.RowsPerChunk;
        try
        {
            BatchedGradientProbe.RowsPerChunk = rowsPerChunk;
            var batched = GradientSignalProbe.Run(model, inputs, options, vocabSize);
            GradientSignalProbe.UseReference = true;
            var reference = GradientSignalProbe.Run(model, inputs, options, vocabSize);
            return (batched, reference);
        }
        finally
        {
            GradientSignalProbe.UseReference = false;
            BatchedGradientProbe.RowsPerChunk = savedRows;
        }
    }

    private static void RandomiseBiases(DeepAlign.Models.ICausalLanguageModel model)
    {
        using var noGrad = no_grad();
        using var generator = new Generator(5, CPU);
        foreach (var (name, p) in model.NamedParameters())
            if (name.EndsWith(".bias", StringComparison.Ordinal) || name.EndsWith("norm.weight", StringComparison.Ordinal))
            {
                using var noise = empty(p.shape, dtype: ScalarType.Float32).normal_(name.EndsWith(".bias", StringComparison.Ordinal) ? 0.0 : 1.0, 0.2, generator);
                p.copy_(noise);
            }
    }

    [Theory]
    [InlineData("llama", false, 4, 2, 6, null, 16)]   // untied head, GQA, one chunk per sequence
    [InlineData("llama", true, 4, 2, 6, null, 3)]     // tied head: backward to the embeddings; several chunks
    [InlineData("llama", false, 4, 4, 8, 40, 1)]      // plain MHA, logits wider than the tokenizer, one row per chunk
    [InlineData("qwen2", true, 4, 2, 6, 45, 4)]       // qkv biases, tied, vocabulary cut
    [InlineData("qwen2", false, 2, 1, 20, null, 5)]   // J beyond every response, LastLayers = all
    public void Norms_equal_the_reference_within_1e_5(string family, bool tied, int heads, int kvHeads, int maxPositions, int? vocabSize, int rowsPerChunk)
    {
        torch.set_num_threads(1);
        var config = family == "llama"
            ? TinyModelFactory.LlamaConfig(vocabSize: 48, hiddenSize: 32, layers: 3, heads: heads, kvHeads: kvHeads, intermediateSize: 72, tieWordEmbeddings: tied, initializerRange: 0.15)
            : TinyModelFactory.Qwen2Config(vocabSize: 48, hiddenSize: 32, layers: 3, heads: heads, kvHeads: kvHeads, intermediateSize: 72, tieWordEmbeddings: tied, initializerRange: 0.15);
        using var model = TinyModelFactory.Create(config, seed: 31);
        RandomiseBiases(model);
        var options = new GradientProbeOptions { MaxPositions = maxPositions, LastLayers = maxPositions == 20 ? 3 : 2 };
        var inputs = Inputs(vocabSize ?? 48, seed: maxPositions + heads);
        BatchedGradientProbe.TryCreate(model, GradientSignalProbe.SelectParameters(model, options.LastLayers)).Should().NotBeNull("the plain decoder takes the batched path");

        var (batched, reference) = Both(model, inputs, options, vocabSize, rowsPerChunk);

        batched.ParameterNames.Should().Equal(reference.ParameterNames);
        batched.ByPosition.Select(p => (p.Position, p.N)).Should().Equal(reference.ByPosition.Select(p => (p.Position, p.N)));
        batched.ByPosition.Should().NotBeEmpty();
        for (int i = 0; i < reference.ByPosition.Count; i++)
        {
            double expected = reference.ByPosition[i].Norm.Mean;
            expected.Should().BeGreaterThan(0);
            batched.ByPosition[i].Norm.Mean.Should().BeApproximately(expected, 1e-5 * expected, $"position {i + 1}");
            if (!double.IsNaN(reference.ByPosition[i].Norm.StdErr))
                batched.ByPosition[i].Norm.StdErr.Should().BeApproximately(reference.ByPosition[i].Norm.StdErr, 1e-5 * expected);
        }
        model.NamedParameters().Should().OnlyContain(p => p.Parameter.requires_grad, "the flags are restored");
    }

    [Fact]
    public void Models_with_adapters_use_the_reference_path_and_still_agree_with_it()
    {
        torch.set_num_threads(1);
        var config = TinyModelFactory.LlamaConfig(vocabSize: 40, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64, initializerRange: 0.15);
        using var model = TinyModelFactory.Create(config, seed: 3);
        LoraApplier.Apply(model, new LoraOptions { Rank = 2, TargetModules = new[] { "q_proj" } });
        var selected = GradientSignalProbe.SelectParameters(model, 1);
        BatchedGradientProbe.TryCreate(model, selected).Should().BeNull("wrapped projections are not the plain decoder");
    }

    [Fact]
    public void Bfloat16_weights_give_float32_norms_close_to_the_float32_model()
    {
        torch.set_num_threads(1);
        var config = TinyModelFactory.LlamaConfig(vocabSize: 48, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64, initializerRange: 0.15);
        using var fp32 = TinyModelFactory.Create(config, seed: 8);
        using var bf16 = TinyModelFactory.Create(config, seed: 8, dtype: ScalarType.BFloat16);
        var inputs = Inputs(48, 2);
        var options = new GradientProbeOptions { MaxPositions = 6, LastLayers = 1 };
        var a = GradientSignalProbe.Run(fp32, inputs, options);
        var b = GradientSignalProbe.Run(bf16, inputs, options);
        for (int i = 0; i < a.ByPosition.Count; i++)
            b.ByPosition[i].Norm.Mean.Should().BeApproximately(a.ByPosition[i].Norm.Mean, 0.05 * a.ByPosition[i].Norm.Mean, "bf16 rounding of the weights only");
    }
}
