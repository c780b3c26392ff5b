using DeepAlign.Generation;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Generation;

public class ModelScorerTests
{
    public ModelScorerTests() => torch.set_num_threads(1);

    [Fact]
    public void Dropped_rows_stay_idle_in_the_cache_until_a_quarter_is_idle_and_live_scores_are_unchanged()
    {
        using var model = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(vocabSize: 48), seed: 9);
        using var _ = no_grad();
        using var lazy = new ModelScorer(model);
        using var ids = tensor(Enumerable.Range(0, 8 * 3).Select(i => (long)(i % 40 + 1)).ToArray(), new long[] { 8, 3 });
        using var mask = ones(8, 3, dtype: ScalarType.Int64);
        var context = new ScoringContext(0, Enumerable.Range(0, 8).ToArray(), Enumerable.Repeat(1, 8).ToArray());
        lazy.Prefill(ids, mask, context, 4).Dispose();

        // Drop row 2 (1 of 8 idle): the cache keeps 8 rows.
        var keep = new long[] { 0, 1, 3, 4, 5, 6, 7 };
        lazy.SelectRows(keep);
        lazy.Cache!.BatchSize.Should().Be(8);
        using var next = tensor(new long[] { 5, 6, 7, 8, 9, 10, 11 }, new long[] { 7, 1 });
        using var mask2 = ones(7, 4, dtype: ScalarType.Int64);
        using var scores = lazy.Step(next, mask2, context);
        scores.shape.Should().Equal(7, 48);

        // Reference: a fresh scorer on only the live rows, computed without any idle row.
        using var reference = new ModelScorer(model);
        using var liveIds = ids.index_select(0, tensor(keep));
        reference.Prefill(liveIds, ones(7, 3, dtype: ScalarType.Int64), context, 4).Dispose();
        using var expected = reference.Step(next, mask2, context);
        scores.allclose(expected, rtol: 1e-5, atol: 1e-5).Should().BeTrue();

        // Drop two more live rows (3 of 8 idle >= a quarter): the cache is compacted to the 5 live rows.
        lazy.SelectRows(new long[] { 0, 2, 3, 5, 6 });
        lazy.Cache!.BatchSize.Should().Be(5);
        reference.SelectRows(new long[] { 0, 2, 3, 5, 6 });
        using var next3 = tensor(new long[] { 12, 13, 14, 15, 16 }, new long[] { 5, 1 });
        using var mask3 = ones(5, 5, dtype: ScalarType.Int64);
        using var a = lazy.Step(next3, mask3, context);
        using var b = reference.Step(next3, mask3, context);
        a.allclose(b, rtol: 1e-5, atol: 1e-5).Should().BeTrue();
    }
}
