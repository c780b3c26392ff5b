using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Testing;

public class TableCausalLanguageModelTests
{
    public TableCausalLanguageModelTests() => torch.set_num_threads(1);

    private static Tensor Ids(params long[][] rows) =>
        tensor(rows.SelectMany(r => r).ToArray(), new long[] { rows.Length, rows[0].Length }, ScalarType.Int64);

    private static float[] Row(Tensor logits, int b, int t)
    {
        using var r = logits[b, t];
        return r.data<float>().ToArray();
    }

    private static double[] LogSoftmax(float[] logits)
    {
        double max = logits.Where(float.IsFinite).Max();
        double lse = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
        return logits.Select(l => l - lse).ToArray();
    }

    private static TableCausalLanguageModel Model() =>
        TableCausalLanguageModel.CreateBuilder(4)
            .When(1, 2).Probabilities(0.1, 0.2, 0.3, 0.4)
            .WhenEndsWith(2).Probabilities(0.7, 0.1, 0.1, 0.1)
            .WhenEndsWith(3, 2).Probabilities(0.25, 0.25, 0.5, 0)
            .Otherwise(c => c.Count == 3 ? new float[] { 0, 0, 0, 5 } : null)
            .ByDefault().Logits(1, 2, 3, 4)
            .Build();

    [Fact]
    public void Lookup_order_is_exact_then_longest_suffix_then_function_then_default()
    {
        using var model = Model();
        model.LogitsFor(new long[] { 1, 2 }).Should().Equal(new[] { 0.1, 0.2, 0.3, 0.4 }.Select(p => (float)Math.Log(p)));
        model.LogitsFor(new long[] { 0, 3, 2 }).Should().Equal(new[] { 0.25, 0.25, 0.5 }.Select(p => (float)Math.Log(p)).Append(float.NegativeInfinity));
        model.LogitsFor(new long[] { 0, 2 })[0].Should().Be((float)Math.Log(0.7));
        model.LogitsFor(new long[] { 0, 0, 1 }).Should().Equal(0f, 0f, 0f, 5f);
        model.LogitsFor(new long[] { 0, 1 }).Should().Equal(1f, 2f, 3f, 4f);
        model.LogitsFor(Array.Empty<long>()).Should().Equal(1f, 2f, 3f, 4f);
    }

    [Fact]
    public void Uniform_is_the_default_and_log_softmax_reproduces_written_probabilities()
    {
        using var model = TableCausalLanguageModel.CreateBuilder(3).When(0).Probabilities(0.2, 0.3, 0.5).Build();
        using var logits = model.Forward(Ids(new long[] { 0 }));
        using var lp = logits.log_softmax(-1);
        lp[0, 0].data<float>().ToArray().Should().BeEquivalentTo(new[] { Math.Log(0.2), Math.Log(0.3), Math.Log(0.5) }.Select(x => (float)x),
            o => o.Using<float>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-6f)).WhenTypeIs<float>());
        model.LogitsFor(new long[] { 1 }).Should().Equal(0f, 0f, 0f);
        logits.dtype.Should().Be(ScalarType.Float32);
    }

    [Fact]
    public void Full_forward_gives_one_distribution_per_position_from_the_real_tokens_so_far()
    {
        using var model = Model();
        using var logits = model.Forward(Ids(new long[] { 1, 2, 3 }));
        logits.shape.Should().Equal(1, 3, 4);
        Row(logits, 0, 0).Should().Equal(model.LogitsFor(new long[] { 1 }));
        Row(logits, 0, 1).Should().Equal(model.LogitsFor(new long[] { 1, 2 }));
        Row(logits, 0, 2).Should().Equal(model.LogitsFor(new long[] { 1, 2, 3 }));
        using var last = model.Forward(Ids(new long[] { 1, 2, 3 }), lastPositionOnly: true);
        last.shape.Should().Equal(1, 1, 4);
        Row(last, 0, 0).Should().Equal(model.LogitsFor(new long[] { 1, 2, 3 }));
    }

    [Fact]
    public void Left_padding_is_skipped_through_the_attention_mask()
    {
        using var model = Model();
        using var ids = Ids(new long[] { 0, 0, 1, 2 }, new long[] { 3, 3, 3, 2 });
        using var mask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1 }, new long[] { 2, 4 }, ScalarType.Int64);
        using var logits = model.Forward(ids, mask, lastPositionOnly: true);
        Row(logits, 0, 0).Should().Equal(model.LogitsFor(new long[] { 1, 2 }));
        Row(logits, 1, 0).Should().Equal(model.LogitsFor(new long[] { 3, 3, 3, 2 }));
    }

    [Fact]
    public void Cached_steps_equal_full_recomputation_and_cache_length_advances()
    {
        using var model = Model();
        using var cache = model.CreateCache(2, 2);
        using (var mask = tensor(new long[] { 0, 1, 1, 1 }, new long[] { 2, 2 }, ScalarType.Int64))
        using (var ids = Ids(new long[] { 0, 1 }, new long[] { 3, 3 }))
        using (var _ = model.Forward(ids, mask, cache, lastPositionOnly: true)) { }
        cache.Length.Should().Be(2);
        using (var mask = tensor(new long[] { 0, 1, 1, 1, 1, 1 }, new long[] { 2, 3 }, ScalarType.Int64))
        using (var ids = Ids(new long[] { 2 }, new long[] { 2 }))
        using (var step = model.Forward(ids, mask, cache, lastPositionOnly: true))
        {
            cache.Length.Should().Be(3);
            Row(step, 0, 0).Should().Equal(model.LogitsFor(new long[] { 1, 2 }));
            Row(step, 1, 0).Should().Equal(model.LogitsFor(new long[] { 3, 3, 2 }));
        }

        // Branch: a clone continues independently; the original is rewound with Trim.
        using var branch = cache.Clone();
        cache.Trim(2);
        using (var mask = tensor(new long[] { 0, 1, 1, 1, 1, 1 }, new long[] { 2, 3 }, ScalarType.Int64))
        using (var ids = Ids(new long[] { 3 }, new long[] { 1 }))
        using (var step = model.Forward(ids, mask, cache, lastPositionOnly: true))
        {
            Row(step, 0, 0).Should().Equal(model.LogitsFor(new long[] { 1, 3 }));
            Row(step, 1, 0).Should().Equal(model.LogitsFor(new long[] { 3, 3, 1 }));
        }
        branch.SelectRows(new long[] { 1 });
        using (var ids = Ids(new long[] { 2 }))
        using (var step = model.Forward(ids, null, branch, lastPositionOnly: true))
            Row(step, 0, 0).Should().Equal(model.LogitsFor(new long[] { 3, 3, 2, 2 }));
    }

    [Fact]
    public void Has_no_parameters_and_counts_forward_calls()
    {
        using var model = Model();
        model.TrainableParameters().Should().BeEmpty();
        model.NamedParameters().Should().BeEmpty();
        using (var _ = model.Forward(Ids(new long[] { 1, 2 }, new long[] { 1, 1 }))) { }
        model.ForwardCallCount.Should().Be(1);
        model.ProcessedPositionCount.Should().Be(4);
        model.Config.VocabSize.Should().Be(4);
    }

    [Fact]
    public void Bad_tables_and_inputs_throw_clear_errors()
    {
        var b = TableCausalLanguageModel.CreateBuilder(3);
        b.Invoking(x => x.When(1).Probabilities(0.5, 0.6, 0)).Should().Throw<ArgumentException>().WithMessage("*When(1)*sum*");
        b.Invoking(x => x.When(1).Logits(1, 2)).Should().Throw<ArgumentException>().WithMessage("*expected 3*");
        b.Invoking(x => x.When(7)).Should().Throw<ArgumentOutOfRangeException>();
        b.Invoking(x => x.ByDefault().Logits(double.NegativeInfinity, double.NegativeInfinity, double.NegativeInfinity))
            .Should().Throw<ArgumentException>().WithMessage("*finite*");
        using var model = b.Build();
        model.Invoking(m => m.Forward(Ids(new long[] { 5 }))).Should().Throw<ArgumentOutOfRangeException>();
        using var badMask = tensor(new long[] { 1, 1 }, new long[] { 1, 2 }, ScalarType.Int64);
        model.Invoking(m => m.Forward(Ids(new long[] { 1 }), badMask)).Should().Throw<ArgumentException>().WithMessage("*attentionMask*");
    }

    [Fact]
    public void Tokens_spreads_the_remaining_mass_over_unlisted_tokens()
    {
        using var model = TableCausalLanguageModel.CreateBuilder(5).ByDefault().Tokens((2, 0.6), (4, 0.1)).Build();
        var p = model.LogitsFor(Array.Empty<long>()).Select(l => Math.Exp(l)).ToArray();
        p.Should().BeEquivalentTo(new[] { 0.1, 0.1, 0.6, 0.1, 0.1 }, o => o.WithStrictOrdering().Using<double>(c => c.Subject.Should().BeApproximately(c.Expectation, 1e-6)).WhenTypeIs<double>());
    }
}
