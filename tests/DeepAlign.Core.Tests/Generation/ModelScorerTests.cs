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

    [Fact]
    public void Repeated_prompts_are_prefilled_once_and_every_row_gets_their_cache_and_scores()
    {
        using var model = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(vocabSize: 48), seed: 4);
        using var _ = no_grad();
        // Rows 0, 2 and 3 repeat one prompt; row 1 is left-padded and different.
        var rows = new long[][] { new long[] { 5, 6, 7 }, new long[] { 0, 9, 8 }, new long[] { 5, 6, 7 }, new long[] { 5, 6, 7 } };
        using var ids = tensor(rows.SelectMany(r => r).ToArray(), new long[] { 4, 3 });
        using var mask = tensor(new long[] { 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, new long[] { 4, 3 });
        var (unique, copyOf) = ModelScorer.DistinctRows(ids, mask);
        unique.Should().Equal(0, 1);
        copyOf.Should().Equal(0, 1, 0, 0);

        var context = new ScoringContext(0, Enumerable.Range(0, 4).ToArray(), Enumerable.Repeat(1, 4).ToArray());
        using var shared = new ModelScorer(model);
        using var first = shared.Prefill(ids, mask, context, 3);
        shared.Cache!.BatchSize.Should().Be(4);
        // Reference: every row alone.
        for (int r = 0; r < 4; r++)
        {
            using var alone = new ModelScorer(model);
            using var rowIds = ids.narrow(0, r, 1);
            using var rowMask = mask.narrow(0, r, 1);
            using var expected = alone.Prefill(rowIds, rowMask, context, 3);
            first.narrow(0, r, 1).allclose(expected, rtol: 1e-5, atol: 1e-5).Should().BeTrue($"prefill row {r}");
            using var next = tensor(new long[] { 11 + r }, new long[] { 1, 1 });
            using var nextMask = ones(1, 4, dtype: ScalarType.Int64);
            if (r == 1) nextMask[0, 0] = tensor(0L);
            using var e2 = alone.Step(next, nextMask, context);
            using var all = tensor(new long[] { 11, 12, 13, 14 }, new long[] { 4, 1 });
            using var allMask = ones(4, 4, dtype: ScalarType.Int64);
            allMask[1, 0] = tensor(0L);
            using var scorer = new ModelScorer(model);
            scorer.Prefill(ids, mask, context, 3).Dispose();
            using var a2 = scorer.Step(all, allMask, context);
            a2.narrow(0, r, 1).allclose(e2, rtol: 1e-5, atol: 1e-5).Should().BeTrue($"step row {r}");
        }
    }
}
