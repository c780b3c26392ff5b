using DeepAlign.Generation;
using DeepAlign.Method.SafeDecoding;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static DeepAlign.Tests.Method.Contrastive.ContrastiveTestModels;
using Generator = DeepAlign.Generation.Generator;

namespace DeepAlign.Tests.Method.SafeDecoding;

public class SafeDecoderTests
{
    public SafeDecoderTests() => torch.set_num_threads(1);

    private static GenerationRequest[] MixedRequests(long offset = 0) => new[]
    {
        new GenerationRequest(new[] { 3 + offset, 4 + offset, 5 + offset }),
        new GenerationRequest(new[] { 7 + offset }),
        GenerationRequest.WithPrefix(new[] { 9 + offset, 10 + offset }, new[] { 11 + offset, 12 + offset, 13 + offset }),
        GenerationRequest.WithPrefix(Array.Empty<long>(), new[] { 6 + offset }),
    };

    public static IEnumerable<object[]> DecodingModes() => new[]
    {
        new object[] { new GenerationOptions { MaxNewTokens = 12 } },
        new object[] { new GenerationOptions { MaxNewTokens = 12, DoSample = true, Seed = 17 } },
        new object[] { new GenerationOptions { MaxNewTokens = 12, DoSample = true, Seed = 5, Temperature = 0.7, TopK = 20, TopP = 0.9 } },
    };

    [Theory]
    [MemberData(nameof(DecodingModes))]
    public void M_zero_reproduces_the_original_generator_exactly_and_never_runs_the_expert(GenerationOptions options)
    {
        using var original = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 1);
        using var expert = TableCausalLanguageModel.CreateBuilder(128).Build();
        var requests = MixedRequests();
        using var plain = new Generator(original);
        var expected = plain.Generate(requests, options);
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { M = 0 });
        var actual = decoder.Generate(requests, options);
        for (int r = 0; r < requests.Length; r++)
        {
            actual[r].GeneratedIds.Should().Equal(expected[r].GeneratedIds, $"row {r}");
            actual[r].FinishReason.Should().Be(expected[r].FinishReason);
        }
        expert.ForwardCallCount.Should().Be(0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Alpha_zero_with_the_original_as_its_own_expert_reproduces_the_original_generator(bool sample)
    {
        // The sample space is then the original's top-c (c = 5): greedy never leaves it, and sampling with the
        // generator's top-k = c draws from the same five tokens with the same scores, so every step (steered or not) gives
        // the original's own token. On tiny random Llamas (near-uniform, so the top-5 cut matters) with left padding and
        // forced prefixes, and m = 6 so the steered window covers several steps.
        using var original = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 3);
        var options = new GenerationOptions { MaxNewTokens = 10, DoSample = sample, Seed = 9, TopK = sample ? 5 : 0 };
        var requests = MixedRequests();
        using var plain = new Generator(original);
        var expected = plain.Generate(requests, options);
        using var decoder = new SafeDecoder(original, original, new SafeDecodingOptions { Alpha = 0, M = 6 });
        var actual = decoder.Generate(requests, options);
        for (int r = 0; r < requests.Length; r++) actual[r].GeneratedIds.Should().Equal(expected[r].GeneratedIds, $"row {r}");
        if (sample)
        {
            // Without the generator's top-k the first steps differ in distribution: SafeDecoding truncates to the top 5.
            var untruncated = plain.Generate(requests, options with { TopK = 0 });
            var steered = decoder.Generate(requests, options with { TopK = 0 });
            steered.Zip(untruncated).Should().Contain(p => !p.First.GeneratedIds.SequenceEqual(p.Second.GeneratedIds));
        }
    }

    [Fact]
    public void After_the_first_m_tokens_the_scores_are_the_original_models_bit_for_bit()
    {
        // Both runs follow the same forced token script, so they score the same contexts.
        using var original = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 5);
        using var expert = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 6);
        var requests = MixedRequests(offset: 20);
        var script = Enumerable.Range(0, requests.Length).ToDictionary(r => r, r => Enumerable.Range(0, 8).Select(t => (long)(30 + 7 * r + t)).ToArray());
        var generation = (RecordingForcer f) => new GenerationOptions { MaxNewTokens = 8, StopTokenIds = Array.Empty<long>(), TokenForcer = f };
        using var plain = new Generator(original);
        var plainForcer = new RecordingForcer(script);
        plain.Generate(requests, generation(plainForcer));
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { M = 4 });
        var forcer = new RecordingForcer(script);
        decoder.Generate(requests, generation(forcer));
        forcer.Seen.Should().HaveCount(plainForcer.Seen.Count);
        int steered = 0, unsteered = 0;
        foreach (var (mine, reference) in forcer.Seen.Zip(plainForcer.Seen))
        {
            mine.Row.Should().Be(reference.Row);
            mine.Position.Should().Be(reference.Position);
            if (mine.Position > 4)
            {
                mine.Scores.Should().Equal(reference.Scores, $"row {mine.Row}, j {mine.Position}");
                unsteered++;
            }
            else
            {
                mine.Scores.Should().NotEqual(reference.Scores);
                mine.Scores.Count(float.IsFinite).Should().BeGreaterThanOrEqualTo(5).And.BeLessThan(128);
                steered++;
            }
        }
        steered.Should().Be(4 + 4 + 1 + 3, "rows 2 and 3 start at j = 4 and j = 2");
        unsteered.Should().Be(32 - steered);
    }

    [Fact]
    public void The_expert_runs_only_while_some_row_is_steered()
    {
        using var original = Hashed(16, 2f, salt: 1);
        using var expert = Hashed(16, 2f, salt: 2);
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { M = 3 });
        var results = decoder.Generate(new[] { new GenerationRequest(new long[] { 1 }), GenerationRequest.WithPrefix(new long[] { 2 }, new long[] { 3 }) },
            new GenerationOptions { MaxNewTokens = 10, StopTokenIds = Array.Empty<long>() });
        results.Should().OnlyContain(r => r.GeneratedIds.Count == 10);
        original.ForwardCallCount.Should().Be(10);
        expert.ForwardCallCount.Should().Be(3, "row 0 is steered at j = 1..3 (steps 0-2), row 1 at j = 2..3");
        original.ProcessedPositionCount.Should().BeGreaterThan(expert.ProcessedPositionCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Batched_decoding_equals_one_at_a_time_on_peaked_table_models(bool sample)
    {
        // Rows stop on id 0 at different steps (cache compaction while the expert still runs), have different prompt
        // lengths (left padding) and forced prefixes (different phases within one batch: m = 3).
        using var original = Hashed(20, 4f, salt: 1);
        using var expert = Hashed(20, 4f, salt: 2);
        var options = new GenerationOptions { MaxNewTokens = 15, DoSample = sample, Seed = 3, Temperature = 1.2, StopTokenIds = new long[] { 0 } };
        var requests = MixedRequests().Concat(MixedRequests(offset: 1)).Select((r, i) => r with { Seed = 100 + i }).ToArray();
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { M = 3, MinCommonTokens = 3, Trace = true });
        var batched = decoder.Generate(requests, options);
        var batchedTrace = decoder.LastTrace!;
        batchedTrace.Select(t => t.Count).Should().Equal(batched.Select(s => s.GeneratedIds.Count));
        for (int r = 0; r < requests.Length; r++)
        {
            var single = decoder.Generate(new[] { requests[r] }, options).Single();
            single.GeneratedIds.Should().Equal(batched[r].GeneratedIds, $"row {r}");
            var singleTrace = decoder.LastTrace!.Single();
            singleTrace.Should().HaveCount(batchedTrace[r].Count);
            for (int t = 0; t < singleTrace.Count; t++)
            {
                var (a, b) = (singleTrace[t], batchedTrace[r][t]);
                a.Row.Should().Be(0);
                b.Row.Should().Be(r);
                (a.Step, a.ResponsePosition, a.TokenId, a.Steered, a.SampleSpaceSize, a.IntersectionDepth)
                    .Should().Be((b.Step, b.ResponsePosition, b.TokenId, b.Steered, b.SampleSpaceSize, b.IntersectionDepth), $"row {r}, token {t}");
                a.OriginalProbability.Should().BeApproximately(b.OriginalProbability, 1e-6);
                (a.ExpertProbability ?? -1).Should().BeApproximately(b.ExpertProbability ?? -1, 1e-6);
                a.SafeDecodingProbability.Should().BeApproximately(b.SafeDecodingProbability, 1e-6);
            }
        }
        // Not vacuous: SafeDecoding changes some row, and some rows were steered while others were not.
        using var plain = new Generator(original);
        plain.Generate(requests, options).Zip(batched).Should().Contain(p => !p.First.GeneratedIds.SequenceEqual(p.Second.GeneratedIds));
        batchedTrace.SelectMany(t => t).Should().Contain(e => e.Steered).And.Contain(e => !e.Steered);
    }

    [Fact]
    public void Batched_scores_equal_one_at_a_time_scores_on_tiny_llamas()
    {
        using var original = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 11);
        using var expert = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 12);
        var requests = MixedRequests(offset: 20);
        var script = Enumerable.Range(0, requests.Length).ToDictionary(r => r, r => Enumerable.Range(0, 6).Select(t => (long)(40 + 5 * r + t)).ToArray());
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { M = 5 });
        var batchedForcer = new RecordingForcer(script);
        decoder.Generate(requests, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = Array.Empty<long>(), TokenForcer = batchedForcer });
        int flips = 0;
        for (int r = 0; r < requests.Length; r++)
        {
            var singleForcer = new RecordingForcer(new Dictionary<int, long[]> { [0] = script[r] });
            decoder.Generate(new[] { requests[r] }, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = Array.Empty<long>(), TokenForcer = singleForcer });
            var batchedRows = batchedForcer.Seen.Where(s => s.Row == r).ToArray();
            singleForcer.Seen.Should().HaveCount(6);
            for (int t = 0; t < 6; t++)
            {
                var (a, b) = (singleForcer.Seen[t].Scores, batchedRows[t].Scores);
                for (int v = 0; v < a.Length; v++)
                {
                    // The sample space may differ only where a rank is decided by a near-tie (batched float noise).
                    if (float.IsNegativeInfinity(a[v]) != float.IsNegativeInfinity(b[v])) { flips++; continue; }
                    if (float.IsFinite(a[v])) a[v].Should().BeApproximately(b[v], 1e-4f, $"row {r}, step {t}, token {v}");
                }
            }
        }
        flips.Should().BeLessThanOrEqualTo(2);
    }

    [Fact]
    public async Task Streaming_reports_trace_entries_and_equals_the_plain_call()
    {
        using var original = Hashed(12, 3f, salt: 5);
        using var expert = Hashed(12, 3f, salt: 6);
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { Trace = true, M = 3 });
        var requests = MixedRequests(offset: -3).Take(3).ToArray();
        var options = new GenerationOptions { MaxNewTokens = 5, DoSample = true, Seed = 2 };
        var results = decoder.Generate(requests, options);
        var trace = decoder.LastTrace!;
        var streamed = new List<GeneratedToken>();
        await foreach (var step in decoder.StreamAsync(requests, options)) streamed.AddRange(step.Tokens);
        for (int r = 0; r < requests.Length; r++)
        {
            var mine = streamed.Where(t => t.Row == r).ToArray();
            mine.Select(t => t.TokenId).Should().Equal(results[r].GeneratedIds);
            mine.Select(t => (SafeDecodingTraceEntry)t.Info!).Should().Equal(trace[r]);
            trace[r].Select(e => e.ResponsePosition).Should().Equal(mine.Select(t => t.ResponsePosition));
            trace[r].Select(e => e.Steered).Should().Equal(trace[r].Select(e => e.ResponsePosition <= 3));
            trace[r].Count(e => e.Steered).Should().Be(r < 2 ? 3 : 0, "row 2's forced prefix covers j = 1..3");
            trace[r].Where(e => e.Steered).All(e => e.SampleSpaceSize >= 5 && e.IntersectionDepth >= 5 && e.ExpertProbability != null).Should().BeTrue();
            trace[r].Where(e => !e.Steered).Should().OnlyContain(e => e.SampleSpaceSize == 12 && Math.Abs(e.SafeDecodingProbability - e.OriginalProbability) < 1e-6);
        }
    }

    [Fact]
    public void Stop_ids_default_to_the_original_models_eos_and_forced_prefix_tokens_are_not_checked()
    {
        using var original = TableCausalLanguageModel.CreateBuilder(5).ByDefault().Probabilities(0.1, 0.1, 0.1, 0.1, 0.6).WithSpecialTokens(eos: new[] { 4 }).Build();
        // c = 2: k = 3 gives {4, 1}; weights 0.6 + 3 (0.7 - 0.6) = 0.9 and 0.1: token 4, the original's eos (not the expert's).
        using var expert = TableCausalLanguageModel.CreateBuilder(5).ByDefault().Probabilities(0.05, 0.1, 0.1, 0.05, 0.7).WithSpecialTokens(eos: new[] { 3 }).Build();
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { MinCommonTokens = 2, CountForcedPrefix = false });
        var result = decoder.Generate(new[] { GenerationRequest.WithPrefix(new long[] { 1 }, new long[] { 4, 4 }) }, new GenerationOptions { MaxNewTokens = 5 }).Single();
        result.GeneratedIds.Should().Equal(4L);
        result.FinishReason.Should().Be(FinishReason.StopToken);
    }

    [Fact]
    public void Vocabulary_cut_applies_to_both_models()
    {
        // Token 5 has the largest logit in both models but lies outside the 5-token tokenizer.
        using var original = TableCausalLanguageModel.CreateBuilder(6).ByDefault().Logits(0, 1, 2, 0.5, -1, 9).Build();
        using var expert = TableCausalLanguageModel.CreateBuilder(6).ByDefault().Logits(0, 2, 1, 0.5, -1, 9).Build();
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { VocabSize = 5, MinCommonTokens = 2, Alpha = 1 });
        decoder.Scorer.VocabSize.Should().Be(5);
        var forcer = new RecordingForcer();
        var result = decoder.Generate(new[] { new GenerationRequest(new long[] { 1 }) }, new GenerationOptions { MaxNewTokens = 1, TokenForcer = forcer }).Single();
        // Ranks over the cut vocabulary: original 2, 1, 3, 0, 4; expert 1, 2, 3, 0, 4. k = 2 gives {1, 2}; alpha = 1: ln p_e.
        double ze = Math.Log(new[] { 0, 2, 1, 0.5, -1 }.Sum(Math.Exp));
        var scores = forcer.Seen.Single().Scores;
        scores.Should().HaveCount(5);
        scores[1].Should().BeApproximately((float)(2 - ze), 1e-5f);
        scores[2].Should().BeApproximately((float)(1 - ze), 1e-5f);
        new[] { 0, 3, 4 }.Should().OnlyContain(v => float.IsNegativeInfinity(scores[v]));
        result.GeneratedIds.Should().Equal(1L);
    }

    [Fact]
    public void Options_are_validated_naming_the_field()
    {
        var defaults = new SafeDecodingOptions().Validate();
        defaults.M.Should().Be(2);
        defaults.MinCommonTokens.Should().Be(5);
        defaults.Alpha.Should().Be(3.0);
        defaults.ProbabilityFloor.Should().Be(1e-8);
        defaults.CountForcedPrefix.Should().BeTrue();
        defaults.VocabSize.Should().BeNull();
        defaults.Trace.Should().BeFalse();
        FluentActions.Invoking(() => new SafeDecodingOptions { M = -1 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("M");
        FluentActions.Invoking(() => new SafeDecodingOptions { MinCommonTokens = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("MinCommonTokens");
        FluentActions.Invoking(() => new SafeDecodingOptions { Alpha = -0.5 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Alpha");
        FluentActions.Invoking(() => new SafeDecodingOptions { Alpha = double.NaN }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Alpha");
        FluentActions.Invoking(() => new SafeDecodingOptions { Alpha = double.PositiveInfinity }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Alpha");
        FluentActions.Invoking(() => new SafeDecodingOptions { ProbabilityFloor = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("ProbabilityFloor");
        FluentActions.Invoking(() => new SafeDecodingOptions { ProbabilityFloor = 2 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("ProbabilityFloor");
        FluentActions.Invoking(() => new SafeDecodingOptions { VocabSize = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("VocabSize");

        using var narrow = TableCausalLanguageModel.CreateBuilder(5).Build();
        using var wide = TableCausalLanguageModel.CreateBuilder(6).Build();
        FluentActions.Invoking(() => new SafeDecoder(narrow, wide)).Should().Throw<ArgumentException>().WithMessage("*VocabSize*");
        FluentActions.Invoking(() => new SafeDecoder(narrow, wide, new SafeDecodingOptions { VocabSize = 6 })).Should().Throw<ArgumentException>().WithMessage("*exceeds*");
        FluentActions.Invoking(() => new SafeDecoder(narrow, narrow, new SafeDecodingOptions { MinCommonTokens = 6 })).Should().Throw<ArgumentException>().WithMessage("*MinCommonTokens*");
        FluentActions.Invoking(() => new SafeDecoder(narrow, narrow, new SafeDecodingOptions { M = -1 })).Should().Throw<ArgumentException>().WithParameterName("M");
        using var ok = new SafeDecoder(narrow, wide, new SafeDecodingOptions { VocabSize = 5 });
        ok.Scorer.VocabSize.Should().Be(5);
        ok.Options.MinCommonTokens.Should().Be(5);
    }

    [Fact]
    public void Cancellation_stops_decoding_and_the_decoder_is_reusable()
    {
        using var original = Hashed(8, 1f, salt: 1);
        using var expert = Hashed(8, 1f, salt: 2);
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { M = 10 });
        using var cts = new CancellationTokenSource();
        int steps = 0;
        var progress = new Progress(_ => { if (++steps == 3) cts.Cancel(); });
        decoder.Invoking(d => d.Generate(new[] { new GenerationRequest(new long[] { 1 }) }, new GenerationOptions { MaxNewTokens = 50, StopTokenIds = Array.Empty<long>() }, progress, cts.Token))
            .Should().Throw<OperationCanceledException>();
        expert.ForwardCallCount.Should().Be(3);
        decoder.Generate(new[] { new GenerationRequest(new long[] { 1 }) }, new GenerationOptions { MaxNewTokens = 2 }).Should().HaveCount(1);
    }

    [Fact]
    public void Long_traced_decoding_does_not_leak_tensors()
    {
        using var original = Hashed(16, 1f, salt: 1);
        using var expert = Hashed(16, 1f, salt: 2);
        using var decoder = new SafeDecoder(original, expert, new SafeDecodingOptions { Trace = true, M = 60, MinCommonTokens = 4 });
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var options = new GenerationOptions { MaxNewTokens = 400, DoSample = true, Seed = 1, TopK = 8, StopTokenIds = Array.Empty<long>() };
        long before = Live();
        var liveAt = new Dictionary<int, long>();
        var progress = new Progress(p => { if (p.Step is 10 or 50 or 100 or 250 or 399) liveAt[p.Step] = Live(); });
        decoder.Generate(new[] { new GenerationRequest(new long[] { 1, 2 }), GenerationRequest.WithPrefix(new long[] { 3 }, new long[] { 4 }) }, options, progress);
        liveAt[50].Should().Be(liveAt[10], "steered steps keep both caches and nothing else");
        liveAt[250].Should().Be(liveAt[100], "after the window only the original's cache is live");
        liveAt[399].Should().Be(liveAt[100]);
        liveAt[100].Should().BeLessThan(liveAt[10], "the expert's cache was released");
        Live().Should().Be(before);
        decoder.LastTrace!.Should().OnlyContain(t => t.Count == 400);
        decoder.LastTrace![0].Count(e => e.Steered).Should().Be(60);
        decoder.LastTrace![1].Count(e => e.Steered).Should().Be(59);
        expert.ForwardCallCount.Should().Be(60);
    }

    private sealed class Progress(Action<GenerationProgress> onReport) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => onReport(value);
    }
}
