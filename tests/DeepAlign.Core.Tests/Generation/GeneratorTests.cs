using DeepAlign.Generation;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using Generator = DeepAlign.Generation.Generator;

namespace DeepAlign.Tests.Generation;

public class GeneratorTests
{
    public GeneratorTests() => torch.set_num_threads(1);

    private const long Eos = 5;

    private static GenerationRequest Prompt(params long[] ids) => new(ids);

    /// <summary>Token 1 -> 2 -> 3 -> eos greedily; token 4 leads to itself; everything else prefers 2.</summary>
    private static TableCausalLanguageModel Chain() =>
        TableCausalLanguageModel.CreateBuilder(6)
            .ByDefault().Probabilities(0.1, 0.1, 0.4, 0.2, 0.1, 0.1)
            .WhenEndsWith(2).Probabilities(0.1, 0.1, 0.1, 0.5, 0.1, 0.1)
            .WhenEndsWith(3).Probabilities(0.1, 0.1, 0.1, 0.1, 0.1, 0.5)
            .WhenEndsWith(4).Probabilities(0.1, 0.1, 0.1, 0.1, 0.5, 0.1)
            .WithSpecialTokens(eos: new[] { (int)Eos })
            .Build();

    private sealed class SyncProgress(Action<GenerationProgress> action) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => action(value);
    }

    /// <summary>Wraps a scorer and records what the generator tells it.</summary>
    private sealed class RecordingScorer(INextTokenScorer inner) : INextTokenScorer
    {
        public List<ScoringContext> Contexts { get; } = new();
        public List<long[]> Selections { get; } = new();
        public int Resets { get; private set; }
        public Device Device => inner.Device;
        public int VocabSize => inner.VocabSize;
        public Tensor Prefill(Tensor inputIds, Tensor attentionMask, ScoringContext context, int maxNewTokens)
        {
            Contexts.Add(context);
            return inner.Prefill(inputIds, attentionMask, context, maxNewTokens);
        }
        public Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context)
        {
            Contexts.Add(context);
            return inner.Step(nextTokens, attentionMask, context);
        }
        public void SelectRows(IReadOnlyList<long> rows)
        {
            Selections.Add(rows.ToArray());
            inner.SelectRows(rows);
        }
        public void Reset()
        {
            Resets++;
            inner.Reset();
        }
        public IReadOnlyList<object?>? DescribeStep(IReadOnlyList<long> chosenTokens) => chosenTokens.Select(t => (object?)$"chose {t}").ToArray();
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void Greedy_follows_the_argmax_of_the_table_and_stops_on_the_models_eos()
    {
        using var model = Chain();
        using var generator = new Generator(model);
        var result = generator.Generate(new[] { Prompt(1) }).Single();
        result.GeneratedIds.Should().Equal(2, 3, Eos);
        result.FinishReason.Should().Be(FinishReason.StopToken);
        result.ResponseIds.Should().Equal(2, 3, Eos);
    }

    [Fact]
    public void Greedy_equals_the_argmax_of_the_hand_table_at_every_step()
    {
        using var model = GenerationTestModels.Random(9);
        using var generator = new Generator(model);
        var prompt = new long[] { 3, 1, 4 };
        var result = generator.Generate(new[] { Prompt(prompt) }, new GenerationOptions { MaxNewTokens = 20 }).Single();
        var context = prompt.ToList();
        foreach (var token in result.GeneratedIds)
        {
            token.Should().Be(GenerationTestModels.ArgMax(GenerationTestModels.HashLogits(context, 9)));
            context.Add(token);
        }
        result.GeneratedIds.Should().HaveCount(20);
        result.FinishReason.Should().Be(FinishReason.MaxNewTokens);
    }

    [Fact]
    public void One_forward_per_step_for_the_whole_batch_and_finished_rows_drop_out()
    {
        using var model = Chain();
        using var recording = new RecordingScorer(new ModelScorer(model));
        using var generator = new Generator(recording, defaultStopTokenIds: new[] { Eos });
        // Row 0: 3 -> eos at once. Row 1: 4 -> 4 -> 4 ... until MaxNewTokens.
        var results = generator.Generate(new[] { Prompt(0, 3), Prompt(4) }, new GenerationOptions { MaxNewTokens = 5 });
        results[0].GeneratedIds.Should().Equal(Eos);
        results[0].FinishReason.Should().Be(FinishReason.StopToken);
        results[1].GeneratedIds.Should().Equal(4, 4, 4, 4, 4);
        results[1].FinishReason.Should().Be(FinishReason.MaxNewTokens);
        model.ForwardCallCount.Should().Be(5);
        model.ProcessedPositionCount.Should().Be(2 * 2 + 4); // prefill of 2 x 2 positions, then row 1 alone for 4 steps
        recording.Selections.Should().ContainSingle().Which.Should().Equal(1L);
        recording.Contexts.Select(c => c.Rows.Count).Should().Equal(2, 1, 1, 1, 1);
        recording.Resets.Should().BeGreaterThan(0);
    }

    [Fact]
    public void Stop_ids_can_be_replaced_or_disabled()
    {
        using var model = Chain();
        using var generator = new Generator(model);
        var none = generator.Generate(new[] { Prompt(1) }, new GenerationOptions { MaxNewTokens = 4, StopTokenIds = Array.Empty<long>() }).Single();
        none.GeneratedIds.Should().Equal(2, 3, Eos, 2);
        none.FinishReason.Should().Be(FinishReason.MaxNewTokens);
        var onThree = generator.Generate(new[] { Prompt(1) }, new GenerationOptions { StopTokenIds = new long[] { 3 } }).Single();
        onThree.GeneratedIds.Should().Equal(2, 3);
        onThree.FinishReason.Should().Be(FinishReason.StopToken);
    }

    [Fact]
    public void Stop_conditions_end_a_row()
    {
        using var model = Chain();
        using var generator = new Generator(model);
        var options = new GenerationOptions { MaxNewTokens = 10, StopConditions = new IStopCondition[] { new StopSequenceCondition(new long[] { 4, 4, 4 }) } };
        var results = generator.Generate(new[] { Prompt(4), Prompt(1) }, options);
        results[0].GeneratedIds.Should().Equal(4, 4, 4);
        results[0].FinishReason.Should().Be(FinishReason.StopCondition);
        results[1].GeneratedIds.Should().Equal(2, 3, Eos);
    }

    [Fact]
    public void Forced_prefix_is_emitted_first_conditions_the_model_and_counts_as_response_positions()
    {
        using var model = TableCausalLanguageModel.CreateBuilder(6)
            .ByDefault().Peaked(3, 0.5)
            .When(1, 4, 4).Peaked(2, 0.5)
            .WhenEndsWith(2).Peaked(Eos, 0.5)
            .Build();
        using var recording = new RecordingScorer(new ModelScorer(model));
        using var generator = new Generator(recording);
        // The forced prefix contains the stop id: forced tokens never stop a row.
        var request = GenerationRequest.WithPrefix(new long[] { 1 }, new long[] { 4, Eos, 4 });
        var plain = new GenerationRequest(new long[] { 1 }) { ForcedPrefixIds = new long[] { 4, 4 } };
        var results = generator.Generate(new[] { request, plain }, new GenerationOptions { MaxNewTokens = 3, StopTokenIds = new[] { Eos } });
        results[0].ForcedPrefixIds.Should().Equal(4, Eos, 4);
        results[0].GeneratedIds.Should().Equal(3, 3, 3); // context 1,4,5,4 is not the exact rule: default
        results[0].ResponseIds.Should().Equal(4, Eos, 4, 3, 3, 3);
        results[1].GeneratedIds.Should().Equal(2, Eos); // context 1,4,4 hits the exact rule
        results[1].ResponseIds.Should().Equal(4, 4, 2, Eos);
        recording.Contexts[0].ResponsePositions.Should().Equal(4, 3);
        recording.Contexts[1].ResponsePositions.Should().Equal(5, 4);
        recording.Contexts[2].ResponsePositions.Should().Equal(6);
        model.ForwardCallCount.Should().Be(3, "prompt and forced prefix are prefilled in one pass");
    }

    [Fact]
    public async Task Streaming_yields_the_same_tokens_positions_and_scorer_info_as_the_plain_call()
    {
        using var model = GenerationTestModels.Random(8);
        var requests = new[] { Prompt(1, 2, 3), GenerationRequest.WithPrefix(new long[] { 4 }, new long[] { 6, 6 }), Prompt(7) };
        var options = new GenerationOptions { MaxNewTokens = 12, DoSample = true, Seed = 5, TopK = 5, StopTokenIds = new long[] { 0 } };
        using var generator = new Generator(new RecordingScorer(new ModelScorer(model)), ownsScorer: true);
        var expected = generator.Generate(requests, options);

        var streamed = requests.Select(_ => new List<long>()).ToArray();
        var finish = new FinishReason?[requests.Length];
        int stepIndex = 0;
        await foreach (var step in generator.StreamAsync(requests, options))
        {
            step.Step.Should().Be(stepIndex++);
            foreach (var token in step.Tokens)
            {
                finish[token.Row].Should().BeNull("a finished row yields no more tokens");
                token.ResponsePosition.Should().Be(requests[token.Row].ForcedPrefixIds.Count + streamed[token.Row].Count + 1);
                token.Info.Should().Be($"chose {token.TokenId}");
                token.Origin.Should().Be(TokenOrigin.Model);
                streamed[token.Row].Add(token.TokenId);
                finish[token.Row] = token.FinishReason;
            }
        }
        for (int r = 0; r < requests.Length; r++)
        {
            streamed[r].Should().Equal(expected[r].GeneratedIds);
            finish[r].Should().Be(expected[r].FinishReason);
        }
        var viaAsync = await generator.GenerateAsync(requests, options);
        viaAsync.Select(x => x.GeneratedIds).Should().BeEquivalentTo(expected.Select(x => x.GeneratedIds), o => o.WithStrictOrdering());
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_different_seeds_differ()
    {
        using var model = GenerationTestModels.Random(10);
        using var generator = new Generator(model);
        var requests = new[] { Prompt(1), Prompt(2, 3) };
        IReadOnlyList<long>[] Run(long seed) => generator.Generate(requests, new GenerationOptions { DoSample = true, Seed = seed, MaxNewTokens = 30 })
            .Select(r => r.GeneratedIds).ToArray();
        var a = Run(42);
        var b = Run(42);
        var c = Run(43);
        a[0].Should().Equal(b[0]);
        a[1].Should().Equal(b[1]);
        a[0].SequenceEqual(c[0]).Should().BeFalse();
        a[1].SequenceEqual(c[1]).Should().BeFalse();
        // Sampling differs from greedy on a high-entropy table.
        var greedy = generator.Generate(requests, new GenerationOptions { MaxNewTokens = 30 });
        a[0].SequenceEqual(greedy[0].GeneratedIds).Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_left_padded_batch_equals_one_request_at_a_time(bool sample)
    {
        using var model = GenerationTestModels.Random(7);
        using var generator = new Generator(model);
        var prompts = new[] { new long[] { 1 }, new long[] { 2, 3, 4, 5 }, new long[] { 6, 6 } };
        var options = new GenerationOptions { DoSample = sample, Seed = 11, MaxNewTokens = 15, TopP = 0.9, StopTokenIds = new long[] { 0 } };
        var batch = generator.Generate(prompts.Select(p => Prompt(p)).ToArray(), options);
        for (int r = 0; r < prompts.Length; r++)
        {
            // A row's seed defaults to RowSeed(Seed, r); the single run gets it explicitly.
            var single = generator.Generate(new[] { new GenerationRequest(prompts[r]) { Seed = TokenSampler.RowSeed(11, r) } }, options).Single();
            batch[r].GeneratedIds.Should().Equal(single.GeneratedIds, $"row {r}");
            batch[r].FinishReason.Should().Be(single.FinishReason);
        }
    }

    [Fact]
    public void Rows_with_their_own_sampling_settings_equal_one_call_per_setting()
    {
        // One batch holding every setting of a small sweep must give each row exactly what a call with that setting gives.
        using var model = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(vocabSize: 64), seed: 3);
        using var generator = new Generator(model);
        var settings = new[]
        {
            SamplingSettings.Greedy,
            new SamplingSettings { DoSample = true },
            new SamplingSettings { DoSample = true, Temperature = 0.5 },
            new SamplingSettings { DoSample = true, TopP = 0.3 },
            new SamplingSettings { DoSample = true, TopK = 2 },
            new SamplingSettings { DoSample = true, Temperature = 1.3, TopK = 5, TopP = 0.8 },
        };
        var prompts = new[] { new long[] { 1, 2, 3 }, new long[] { 9 }, new long[] { 4, 4, 8, 16, 23 } };
        var stop = new long[] { 0, 1, 2 };
        var mixed = (from s in Enumerable.Range(0, settings.Length)
                     from p in Enumerable.Range(0, prompts.Length)
                     select new GenerationRequest(prompts[p]) { Seed = 100 * s + p, Sampling = settings[s] }).ToArray();
        var together = generator.Generate(mixed, new GenerationOptions { MaxNewTokens = 12, StopTokenIds = stop });
        for (int s = 0; s < settings.Length; s++)
        {
            var options = new GenerationOptions
            {
                MaxNewTokens = 12, StopTokenIds = stop,
                DoSample = settings[s].DoSample, Temperature = settings[s].Temperature, TopK = settings[s].TopK, TopP = settings[s].TopP,
            };
            var alone = generator.Generate(prompts.Select((p, i) => new GenerationRequest(p) { Seed = 100 * s + i }).ToArray(), options);
            for (int p = 0; p < prompts.Length; p++)
            {
                together[s * prompts.Length + p].GeneratedIds.Should().Equal(alone[p].GeneratedIds, $"setting {s}, prompt {p}");
                together[s * prompts.Length + p].FinishReason.Should().Be(alone[p].FinishReason);
            }
        }
        together.Select(t => t.FinishReason).Distinct().Should().HaveCountGreaterThan(1, "rows should finish at different steps");
    }

    [Fact]
    public void A_request_with_invalid_sampling_settings_is_refused_naming_the_request()
    {
        using var model = GenerationTestModels.Random(7);
        using var generator = new Generator(model);
        var act = () => generator.Generate(new[] { Prompt(1), new GenerationRequest(new long[] { 2 }) { Sampling = new SamplingSettings { DoSample = true, TopP = 0 } } });
        act.Should().Throw<ArgumentException>().WithMessage("*Request 1*TopP*");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_large_batch_whose_rows_finish_at_different_steps_equals_one_request_at_a_time(bool sample)
    {
        // Sixteen rows finishing one by one keep finished rows idle in the cache before compacting (ModelScorer):
        // the live rows must still get exactly their own tokens.
        using var model = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(vocabSize: 64), seed: 5);
        using var generator = new Generator(model);
        var prompts = Enumerable.Range(0, 16).Select(i => Enumerable.Range(0, 1 + i % 5).Select(j => (long)(3 + (i * 7 + j * 3) % 60)).ToArray()).ToArray();
        var options = new GenerationOptions { DoSample = sample, Seed = 21, MaxNewTokens = 20, TopP = 0.9, StopTokenIds = Enumerable.Range(0, 6).Select(i => (long)i).ToArray() };
        var batch = generator.Generate(prompts.Select(p => Prompt(p)).ToArray(), options);
        batch.Select(b => b.GeneratedIds.Count).Distinct().Should().HaveCountGreaterThan(3, "rows should finish at many different steps");
        for (int r = 0; r < prompts.Length; r++)
        {
            var single = generator.Generate(new[] { new GenerationRequest(prompts[r]) { Seed = TokenSampler.RowSeed(21, r) } }, options).Single();
            batch[r].GeneratedIds.Should().Equal(single.GeneratedIds, $"row {r}");
        }
    }

    [Fact]
    public void Sampling_stays_inside_the_top_k_set()
    {
        using var model = TableCausalLanguageModel.CreateBuilder(6).ByDefault().Probabilities(0.3, 0.25, 0.2, 0.1, 0.1, 0.05).Build();
        using var generator = new Generator(model);
        var requests = Enumerable.Range(0, 300).Select(_ => Prompt(1)).ToArray();
        var results = generator.Generate(requests, new GenerationOptions { DoSample = true, Seed = 3, TopK = 2, MaxNewTokens = 1 });
        var tokens = results.Select(r => r.GeneratedIds.Single()).ToArray();
        tokens.Should().OnlyContain(t => t == 0 || t == 1);
        tokens.Count(t => t == 0).Should().BeInRange(120, 210); // expected 300 x 0.3 / 0.55 = 164
    }

    [Fact]
    public void Cancellation_between_steps_stops_generation_and_releases_the_batch()
    {
        using var model = GenerationTestModels.Random(7);
        var scorer = new ModelScorer(model);
        using var generator = new Generator(scorer, ownsScorer: true);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Step == 3) cts.Cancel(); });
        FluentActions.Invoking(() => generator.Generate(new[] { Prompt(1) }, new GenerationOptions { MaxNewTokens = 100, StopTokenIds = Array.Empty<long>() }, progress, cts.Token))
            .Should().Throw<OperationCanceledException>();
        model.ForwardCallCount.Should().Be(3);
        scorer.Cache.Should().BeNull();
    }

    [Fact]
    public async Task Cancelling_a_stream_throws_at_the_next_step()
    {
        using var model = GenerationTestModels.Random(7);
        using var generator = new Generator(model);
        using var cts = new CancellationTokenSource();
        int steps = 0;
        var act = async () =>
        {
            await foreach (var _ in generator.StreamAsync(new[] { Prompt(1) }, new GenerationOptions { MaxNewTokens = 100, StopTokenIds = Array.Empty<long>() }, cts.Token))
                if (++steps == 4) cts.Cancel();
        };
        await act.Should().ThrowAsync<OperationCanceledException>();
        steps.Should().Be(4);
        model.ForwardCallCount.Should().Be(4);
    }

    [Fact]
    public async Task Breaking_out_of_a_stream_releases_the_batch_and_the_generator_is_reusable()
    {
        using var model = GenerationTestModels.Random(7);
        var scorer = new ModelScorer(model);
        using var generator = new Generator(scorer, ownsScorer: true);
        var options = new GenerationOptions { MaxNewTokens = 50, StopTokenIds = Array.Empty<long>() };
        var seen = new List<long>();
        await foreach (var step in generator.StreamAsync(new[] { Prompt(1) }, options))
        {
            scorer.Cache.Should().NotBeNull();
            seen.Add(step.Tokens.Single().TokenId);
            if (seen.Count == 2) break;
        }
        scorer.Cache.Should().BeNull();
        var full = generator.Generate(new[] { Prompt(1) }, options with { MaxNewTokens = 5 }).Single();
        full.GeneratedIds.Take(2).Should().Equal(seen);
    }

    [Fact]
    public void A_second_call_while_a_stream_is_open_is_refused()
    {
        using var model = GenerationTestModels.Random(7);
        using var generator = new Generator(model);
        var options = new GenerationOptions { MaxNewTokens = 10, StopTokenIds = Array.Empty<long>() };
        using var open = generator.StreamAsync(new[] { Prompt(1) }, options).ToBlockingEnumerable().GetEnumerator();
        open.MoveNext().Should().BeTrue();
        generator.Invoking(g => g.Generate(new[] { Prompt(2) }, options)).Should().Throw<InvalidOperationException>().WithMessage("*already running*");
    }

    /// <summary>A two-model scorer shaped like contrastive decoding: l_a + alpha (l_a - l_b), each model with its own cache.</summary>
    private sealed class TwoModelScorer(ModelScorer aligned, ModelScorer reference, float alpha) : INextTokenScorer
    {
        public Device Device => aligned.Device;
        public int VocabSize => aligned.VocabSize;
        public Tensor Prefill(Tensor inputIds, Tensor attentionMask, ScoringContext context, int maxNewTokens) =>
            Combine(aligned.Prefill(inputIds, attentionMask, context, maxNewTokens), reference.Prefill(inputIds, attentionMask, context, maxNewTokens));
        public Tensor Step(Tensor nextTokens, Tensor attentionMask, ScoringContext context) =>
            Combine(aligned.Step(nextTokens, attentionMask, context), reference.Step(nextTokens, attentionMask, context));
        private Tensor Combine(Tensor la, Tensor lb) => la.add(la.sub(lb).mul(alpha));
        public void SelectRows(IReadOnlyList<long> rows) { aligned.SelectRows(rows); reference.SelectRows(rows); }
        public void Reset() { aligned.Reset(); reference.Reset(); }
        public void Dispose() => Reset();
    }

    [Fact]
    public void A_scorer_producing_identical_scores_produces_identical_tokens()
    {
        // Stand-in for "contrastive decoding with alpha = 0 equals the aligned model's own generator": the sampling
        // draws depend only on the scores and the per-row seeds, not on which scorer produced them.
        using var alignedModel = GenerationTestModels.Random(9);
        using var otherModel = TableCausalLanguageModel.CreateBuilder(9).ByDefault().Probabilities(0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1).Build();
        var requests = new[] { Prompt(1, 2), Prompt(3), GenerationRequest.WithPrefix(new long[] { 4 }, new long[] { 5 }) };
        var options = new GenerationOptions { DoSample = true, Seed = 9, Temperature = 0.8, TopP = 0.9, MaxNewTokens = 25, StopTokenIds = new long[] { 0 } };
        using var plain = new Generator(alignedModel);
        using var twoModels = new Generator(new TwoModelScorer(new ModelScorer(alignedModel), new ModelScorer(otherModel), 0f), ownsScorer: true);
        var expected = plain.Generate(requests, options);
        var actual = twoModels.Generate(requests, options);
        for (int r = 0; r < requests.Length; r++) actual[r].GeneratedIds.Should().Equal(expected[r].GeneratedIds);
        using var contrasted = new Generator(new TwoModelScorer(new ModelScorer(alignedModel), new ModelScorer(otherModel), 1f), ownsScorer: true);
        contrasted.Generate(requests, options).Select(x => x.GeneratedIds).Zip(expected.Select(x => x.GeneratedIds))
            .Should().Contain(pair => !pair.First.SequenceEqual(pair.Second), "a non-zero contrast changes some tokens");
    }

    [Fact]
    public void A_token_forcer_overrides_chosen_tokens_and_the_model_continues_from_them()
    {
        using var model = Chain();
        using var generator = new Generator(model);
        var forcer = new FirstStepsForcer(steps: 2, token: 4, row: 0);
        var options = new GenerationOptions { MaxNewTokens = 4, TokenForcer = forcer };
        var results = generator.Generate(new[] { Prompt(1), Prompt(1) }, options);
        results[0].GeneratedIds.Should().Equal(4, 4, 4, 4); // forced 4, 4, then 4 -> 4 greedily
        results[1].GeneratedIds.Should().Equal(2, 3, Eos);
        forcer.SeenPositions.Should().Equal(1, 2, 3, 4);
        forcer.ScoreWidths.Should().OnlyContain(w => w == 6);
    }

    private sealed class FirstStepsForcer(int steps, long token, int row) : ITokenForcer
    {
        public List<int> SeenPositions { get; } = new();
        public List<long> ScoreWidths { get; } = new();
        public long?[]? Choose(Tensor scores, IReadOnlyList<ForcingRow> rows)
        {
            ScoreWidths.Add(scores.shape[1]);
            var mine = rows.FirstOrDefault(r => r.Row == row);
            if (mine is null) return null;
            SeenPositions.Add(mine.ResponsePosition);
            if (mine.GeneratedIds.Count >= steps) return null;
            return rows.Select(r => r.Row == row ? token : (long?)null).ToArray();
        }
    }

    [Fact]
    public void Streaming_reports_forced_tokens_as_forcer_origin()
    {
        using var model = Chain();
        using var generator = new Generator(model);
        var options = new GenerationOptions { MaxNewTokens = 3, TokenForcer = new FirstStepsForcer(1, 4, 0) };
        var origins = generator.StreamAsync(new[] { Prompt(1) }, options).ToBlockingEnumerable().Select(s => s.Tokens.Single().Origin).ToArray();
        origins.Should().Equal(TokenOrigin.Forcer, TokenOrigin.Model, TokenOrigin.Model);
    }

    [Fact]
    public void Scores_are_log_softmax_cut_to_the_tokenizer_vocabulary()
    {
        // Token 5 has the largest logit but lies outside a 5-token tokenizer: it must never be chosen.
        using var model = TableCausalLanguageModel.CreateBuilder(6).ByDefault().Logits(0, 1, 2, 0.5, -1, 9).Build();
        using var scorer = new ModelScorer(model, vocabSize: 5);
        using (var ids = tensor(new long[] { 1 }, new long[] { 1, 1 }, ScalarType.Int64))
        using (var mask = ones(1, 1, dtype: ScalarType.Int64))
        using (var scores = scorer.Prefill(ids, mask, new ScoringContext(0, new[] { 0 }, new[] { 1 }), 1))
        {
            double z = Math.Log(new[] { 0, 1, 2, 0.5, -1 }.Sum(Math.Exp));
            var expected = new[] { 0, 1, 2, 0.5, -1 }.Select(l => (float)(l - z)).ToArray();
            scores.shape.Should().Equal(1, 5);
            scores.dtype.Should().Be(ScalarType.Float32);
            var actual = scores.data<float>().ToArray();
            for (int v = 0; v < 5; v++) actual[v].Should().BeApproximately(expected[v], 1e-6f);
        }
        scorer.Reset();
        using var generator = new Generator(model, vocabSize: 5);
        generator.Generate(new[] { Prompt(1) }, new GenerationOptions { MaxNewTokens = 3 }).Single().GeneratedIds.Should().Equal(2, 2, 2);
    }

    [Fact]
    public void Bad_requests_throw_clear_errors()
    {
        using var model = Chain();
        using var generator = new Generator(model);
        generator.Invoking(g => g.Generate(Array.Empty<GenerationRequest>())).Should().Throw<ArgumentException>().WithMessage("*At least one*");
        generator.Invoking(g => g.Generate(new[] { Prompt() })).Should().Throw<ArgumentException>().WithMessage("*Request 0*");
        generator.Invoking(g => g.Generate(new[] { Prompt(1), Prompt(9) })).Should().Throw<ArgumentException>().WithMessage("*Request 1*9*");
        generator.Invoking(g => g.Generate(new[] { Prompt(1) }, new GenerationOptions { TopP = 2 })).Should().Throw<ArgumentException>().WithMessage("*TopP*");
    }

    [Fact]
    public void Long_generation_does_not_leak_tensors()
    {
        // Live tensors are counted per thread by TorchSharp's dispose-scope statistics (created minus disposed on this
        // thread); unlike the global torch.Tensor.TotalCount this is not disturbed by finalizers of other tests' garbage,
        // and a tensor leaked here and later finalized still shows as live on this thread.
        using var model = GenerationTestModels.Random(16);
        using var generator = new Generator(model);
        var options = new GenerationOptions { MaxNewTokens = 2000, DoSample = true, Seed = 1, TopK = 8, TopP = 0.9, StopTokenIds = Array.Empty<long>() };
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long before = Live();
        var liveAt = new Dictionary<int, long>();
        var progress = new SyncProgress(p => { if (p.Step is 10 or 1000 or 1999) liveAt[p.Step] = Live(); });
        var results = generator.Generate(new[] { Prompt(1, 2), Prompt(3) }, options, progress);
        long after = Live();
        results.Should().OnlyContain(r => r.GeneratedIds.Count == 2000);
        liveAt[1000].Should().Be(liveAt[10], "live tensors must not grow with the number of steps");
        liveAt[1999].Should().Be(liveAt[10]);
        after.Should().Be(before, "every tensor of the call is released");
        model.ForwardCallCount.Should().Be(2000);
    }
}
