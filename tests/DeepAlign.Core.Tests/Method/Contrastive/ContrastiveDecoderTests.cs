using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static DeepAlign.Tests.Method.Contrastive.ContrastiveTestModels;
using Generator = DeepAlign.Generation.Generator;

namespace DeepAlign.Tests.Method.Contrastive;

public class ContrastiveDecoderTests
{
    public ContrastiveDecoderTests() => torch.set_num_threads(1);

    private static readonly ContrastiveDecoderOptions Neutral = new() { Alpha = new ConstantAlpha(0), PlausibilityBeta = 0 };

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
    public void Alpha_zero_beta_zero_reproduces_the_aligned_generator_exactly_on_tiny_llamas(GenerationOptions options)
    {
        using var aligned = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 1);
        using var baseModel = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 2);
        var requests = MixedRequests();
        using var plain = new Generator(aligned);
        var expected = plain.Generate(requests, options);
        foreach (var rule in new[] { ContrastiveRule.Full, ContrastiveRule.BaseFavoredOnly })
        {
            using var decoder = new ContrastiveDecoder(aligned, baseModel, Neutral with { Rule = rule });
            var actual = decoder.Generate(requests, options);
            for (int r = 0; r < requests.Length; r++)
            {
                actual[r].GeneratedIds.Should().Equal(expected[r].GeneratedIds, $"row {r}, rule {rule}");
                actual[r].FinishReason.Should().Be(expected[r].FinishReason);
            }
            // One at a time too (the request seeds are derived from the row index, so keep row 0's seed explicit).
            var single = decoder.Generate(new[] { requests[2] with { Seed = TokenSampler.RowSeed(options.Seed ?? 0, 2) } }, options).Single();
            var plainSingle = plain.Generate(new[] { requests[2] with { Seed = TokenSampler.RowSeed(options.Seed ?? 0, 2) } }, options).Single();
            single.GeneratedIds.Should().Equal(plainSingle.GeneratedIds);
        }
        // A nonzero contrast does change the output (the test above is not vacuous).
        using var contrastive = new ContrastiveDecoder(aligned, baseModel, new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(3), PlausibilityBeta = 0 });
        contrastive.Generate(requests, options).Select(s => s.GeneratedIds).Zip(expected.Select(s => s.GeneratedIds))
            .Should().Contain(p => !p.First.SequenceEqual(p.Second));
    }

    [Theory]
    [MemberData(nameof(DecodingModes))]
    public void Alpha_zero_beta_zero_reproduces_the_aligned_generator_exactly_on_table_models(GenerationOptions options)
    {
        using var aligned = Hashed(24, 1f, salt: 1);
        using var baseModel = Hashed(24, 1f, salt: 2);
        var requests = MixedRequests();
        using var plain = new Generator(aligned);
        var expected = plain.Generate(requests, options with { StopTokenIds = new long[] { 0 } });
        foreach (IAlphaSchedule zero in new IAlphaSchedule[] { new ConstantAlpha(0), new LinearRampAlpha(0, 0, 4), new IncompletenessDrivenAlpha(0) })
        {
            using var decoder = new ContrastiveDecoder(aligned, baseModel, Neutral with { Alpha = zero });
            var actual = decoder.Generate(requests, options with { StopTokenIds = new long[] { 0 } });
            for (int r = 0; r < requests.Length; r++) actual[r].GeneratedIds.Should().Equal(expected[r].GeneratedIds, $"row {r}, {zero}");
        }
    }

    [Fact]
    public void Each_step_runs_each_model_once_for_the_whole_batch()
    {
        using var aligned = Hashed(16, 3f, salt: 1);
        using var baseModel = Hashed(16, 3f, salt: 2);
        using var decoder = new ContrastiveDecoder(aligned, baseModel);
        var results = decoder.Generate(MixedRequests(), new GenerationOptions { MaxNewTokens = 6, StopTokenIds = Array.Empty<long>() });
        results.Should().OnlyContain(r => r.GeneratedIds.Count == 6);
        aligned.ForwardCallCount.Should().Be(6);
        baseModel.ForwardCallCount.Should().Be(6);
        baseModel.ProcessedPositionCount.Should().Be(aligned.ProcessedPositionCount, "both models see the same tokens");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Batched_decoding_equals_one_at_a_time_on_peaked_table_models(bool sample)
    {
        using var aligned = Hashed(20, 4f, salt: 1);
        using var baseModel = Hashed(20, 4f, salt: 2);
        var options = new GenerationOptions { MaxNewTokens = 15, DoSample = sample, Seed = 3, Temperature = 1.2, StopTokenIds = new long[] { 0 } };
        var decoderOptions = new ContrastiveDecoderOptions { Alpha = new LinearRampAlpha(0.5, 2.0, 6), Trace = true };
        var requests = MixedRequests().Select((r, i) => r with { Seed = 100 + i }).ToArray();
        using var decoder = new ContrastiveDecoder(aligned, baseModel, decoderOptions);
        var batched = decoder.Generate(requests, options);
        var batchedTrace = decoder.LastTrace!;
        for (int r = 0; r < requests.Length; r++)
        {
            var single = decoder.Generate(new[] { requests[r] }, options).Single();
            single.GeneratedIds.Should().Equal(batched[r].GeneratedIds, $"row {r}");
            var singleTrace = decoder.LastTrace!.Single();
            singleTrace.Should().HaveCount(batchedTrace[r].Count);
            for (int t = 0; t < singleTrace.Count; t++)
            {
                var (a, b) = (singleTrace[t], batchedTrace[r][t]);
                a.ResponsePosition.Should().Be(b.ResponsePosition);
                a.Alpha.Should().BeApproximately(b.Alpha, 1e-6);
                a.ContrastiveProbability.Should().BeApproximately(b.ContrastiveProbability, 1e-5);
                a.KlAlignedBase.Should().BeApproximately(b.KlAlignedBase, 1e-5);
            }
        }
        batchedTrace.Select(t => t.Count).Should().Equal(batched.Select(s => s.GeneratedIds.Count));
    }

    [Fact]
    public void Batched_scores_equal_one_at_a_time_scores_on_tiny_llamas()
    {
        // Every row follows a fixed token script (forced by a token forcer), so the batched and single runs score the
        // same contexts whatever near-ties a random model has; rows differ in prompt length (left padding) and prefix
        // length (different alpha_j under the ramp).
        using var aligned = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 11);
        using var baseModel = TinyModelFactory.Create(TinyModelFactory.LlamaConfig(), seed: 12);
        var requests = MixedRequests(offset: 20);
        var script = Enumerable.Range(0, requests.Length).ToDictionary(r => r, r => Enumerable.Range(0, 8).Select(t => (long)(30 + 7 * r + t)).ToArray());
        var options = new ContrastiveDecoderOptions { Alpha = new LinearRampAlpha(0.5, 2.0, 3), PlausibilityBeta = 0.05, Rule = ContrastiveRule.Full };
        using var decoder = new ContrastiveDecoder(aligned, baseModel, options);
        var batchedForcer = new RecordingForcer(script);
        decoder.Generate(requests, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = Array.Empty<long>(), TokenForcer = batchedForcer });
        for (int r = 0; r < requests.Length; r++)
        {
            var singleForcer = new RecordingForcer(new Dictionary<int, long[]> { [0] = script[r] });
            decoder.Generate(new[] { requests[r] }, new GenerationOptions { MaxNewTokens = 8, StopTokenIds = Array.Empty<long>(), TokenForcer = singleForcer });
            var batchedRows = batchedForcer.Seen.Where(s => s.Row == r).ToArray();
            singleForcer.Seen.Should().HaveCount(8);
            batchedRows.Should().HaveCount(8);
            for (int t = 0; t < 8; t++)
            {
                singleForcer.Seen[t].Position.Should().Be(batchedRows[t].Position);
                var (a, b) = (singleForcer.Seen[t].Scores, batchedRows[t].Scores);
                for (int v = 0; v < a.Length; v++)
                {
                    if (float.IsNegativeInfinity(b[v]) || float.IsNegativeInfinity(a[v]))
                    {
                        // The plausibility cut may flip only for tokens right at the threshold.
                        continue;
                    }
                    a[v].Should().BeApproximately(b[v], 1e-4f, $"row {r}, step {t}, token {v}");
                }
                a.Count(float.IsFinite).Should().BeCloseTo(b.Count(float.IsFinite), 1);
            }
        }
    }

    [Fact]
    public async Task Streaming_reports_trace_entries_and_equals_the_plain_call()
    {
        using var aligned = Hashed(12, 3f, salt: 5);
        using var baseModel = Hashed(12, 3f, salt: 6);
        using var decoder = new ContrastiveDecoder(aligned, baseModel, new ContrastiveDecoderOptions { Trace = true, Alpha = new IncompletenessDrivenAlpha() });
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
            mine.Select(t => (ContrastiveTraceEntry)t.Info!).Should().Equal(trace[r]);
            trace[r].Select(e => e.TokenId).Should().Equal(results[r].GeneratedIds);
            trace[r].Select(e => e.ResponsePosition).Should().Equal(mine.Select(t => t.ResponsePosition));
            trace[r].Should().OnlyContain(e => e.Incompleteness >= 0 && e.Incompleteness <= 1 && e.KlAlignedBase >= -1e-6
                && Math.Abs(e.Alpha - 2.0 * e.Incompleteness) < 1e-5 && e.PlausibleCount >= 1);
        }
    }

    [Fact]
    public void Stop_ids_default_to_the_aligned_models_eos_and_forced_prefix_tokens_are_not_checked()
    {
        // After the prompt, both models put most mass on token 4 (the aligned model's eos).
        using var aligned = TableCausalLanguageModel.CreateBuilder(5).ByDefault().Probabilities(0.1, 0.1, 0.1, 0.1, 0.6).WithSpecialTokens(eos: new[] { 4 }).Build();
        using var baseModel = TableCausalLanguageModel.CreateBuilder(5).ByDefault().Probabilities(0.2, 0.1, 0.1, 0.1, 0.5).WithSpecialTokens(eos: new[] { 3 }).Build();
        using var decoder = new ContrastiveDecoder(aligned, baseModel);
        var result = decoder.Generate(new[] { GenerationRequest.WithPrefix(new long[] { 1 }, new long[] { 4, 4 }) }, new GenerationOptions { MaxNewTokens = 5 }).Single();
        result.GeneratedIds.Should().Equal(4L);
        result.FinishReason.Should().Be(FinishReason.StopToken);
    }

    [Fact]
    public void Cancellation_stops_decoding()
    {
        using var aligned = Hashed(8, 1f, salt: 1);
        using var baseModel = Hashed(8, 1f, salt: 2);
        using var decoder = new ContrastiveDecoder(aligned, baseModel);
        using var cts = new CancellationTokenSource();
        int steps = 0;
        var progress = new Progress(() => { if (++steps == 3) cts.Cancel(); });
        decoder.Invoking(d => d.Generate(new[] { new GenerationRequest(new long[] { 1 }) }, new GenerationOptions { MaxNewTokens = 50, StopTokenIds = Array.Empty<long>() }, progress, cts.Token))
            .Should().Throw<OperationCanceledException>();
        aligned.ForwardCallCount.Should().Be(3);
        decoder.Generate(new[] { new GenerationRequest(new long[] { 1 }) }, new GenerationOptions { MaxNewTokens = 2 }).Should().HaveCount(1, "the decoder is reusable");
    }

    private sealed class Progress(Action onReport) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => onReport();
    }

    [Fact]
    public void Vocabulary_cut_applies_to_both_models()
    {
        // Token 5 has the largest logit in both models but lies outside the 5-token tokenizer.
        using var aligned = TableCausalLanguageModel.CreateBuilder(6).ByDefault().Logits(0, 1, 2, 0.5, -1, 9).Build();
        using var baseModel = TableCausalLanguageModel.CreateBuilder(6).ByDefault().Logits(0, 2, 1, 0.5, -1, 9).Build();
        using var decoder = new ContrastiveDecoder(aligned, baseModel, new ContrastiveDecoderOptions { VocabSize = 5, PlausibilityBeta = 0 });
        decoder.Scorer.VocabSize.Should().Be(5);
        var forcer = new RecordingForcer();
        var result = decoder.Generate(new[] { new GenerationRequest(new long[] { 1 }) }, new GenerationOptions { MaxNewTokens = 1, TokenForcer = forcer }).Single();
        // l_a - l_b over the cut vocabulary: both normalisers cancel except their difference; s = 2 l_a - l_b.
        double za = Math.Log(new[] { 0, 1, 2, 0.5, -1 }.Sum(Math.Exp)), zb = Math.Log(new[] { 0, 2, 1, 0.5, -1 }.Sum(Math.Exp));
        var expected = new[] { 0.0, 1, 2, 0.5, -1 }.Zip(new[] { 0.0, 2, 1, 0.5, -1 }, (a, b) => 2 * (a - za) - (b - zb)).ToArray();
        var scores = forcer.Seen.Single().Scores;
        scores.Should().HaveCount(5);
        for (int v = 0; v < 5; v++) scores[v].Should().BeApproximately((float)expected[v], 1e-5f);
        result.GeneratedIds.Should().Equal(2L);
    }

    [Fact]
    public void Options_are_validated_and_mismatched_logit_widths_need_a_cut()
    {
        new ContrastiveDecoderOptions().Validate().PlausibilityBeta.Should().Be(0.1, "beta_cd defaults to 0.1 (METHOD.md section 2)");
        new ContrastiveDecoderOptions().Alpha.Should().Be(new ConstantAlpha(1.0));
        new ContrastiveDecoderOptions().Rule.Should().Be(ContrastiveRule.Full);
        FluentActions.Invoking(() => new ContrastiveDecoderOptions { PlausibilityBeta = 1.5 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("PlausibilityBeta");
        FluentActions.Invoking(() => new ContrastiveDecoderOptions { VocabSize = 0 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("VocabSize");
        FluentActions.Invoking(() => new ContrastiveDecoderOptions { Alpha = null! }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Alpha");
        FluentActions.Invoking(() => new ContrastiveDecoderOptions { Alpha = new ConstantAlpha(-1) }.Validate()).Should().Throw<ArgumentException>().WithMessage("*Alpha*");
        FluentActions.Invoking(() => new ContrastiveDecoderOptions { Rule = (ContrastiveRule)7 }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Rule");
        FluentActions.Invoking(() => new ContrastiveDecoderOptions { Incompleteness = new IncompletenessOptions { TopKBase = 0 } }.Validate()).Should().Throw<ArgumentException>().WithMessage("*TopKBase*");

        using var narrow = TableCausalLanguageModel.CreateBuilder(5).Build();
        using var wide = TableCausalLanguageModel.CreateBuilder(6).Build();
        FluentActions.Invoking(() => new ContrastiveDecoder(narrow, wide)).Should().Throw<ArgumentException>().WithMessage("*VocabSize*");
        FluentActions.Invoking(() => new ContrastiveDecoder(narrow, wide, new ContrastiveDecoderOptions { VocabSize = 6 })).Should().Throw<ArgumentException>().WithMessage("*exceeds*");
        using var ok = new ContrastiveDecoder(narrow, wide, new ContrastiveDecoderOptions { VocabSize = 5 });
        ok.Scorer.VocabSize.Should().Be(5);
    }

    [Fact]
    public void Long_traced_decoding_does_not_leak_tensors()
    {
        using var aligned = Hashed(16, 1f, salt: 1);
        using var baseModel = Hashed(16, 1f, salt: 2);
        using var decoder = new ContrastiveDecoder(aligned, baseModel, new ContrastiveDecoderOptions { Trace = true, Alpha = new IncompletenessDrivenAlpha() });
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var options = new GenerationOptions { MaxNewTokens = 400, DoSample = true, Seed = 1, TopK = 8, StopTokenIds = Array.Empty<long>() };
        long before = Live();
        var liveAt = new Dictionary<int, long>();
        var progress = new Progress2(p => { if (p.Step is 10 or 200 or 399) liveAt[p.Step] = Live(); });
        decoder.Generate(new[] { new GenerationRequest(new long[] { 1, 2 }), new GenerationRequest(new long[] { 3 }) }, options, progress);
        liveAt[200].Should().Be(liveAt[10]);
        liveAt[399].Should().Be(liveAt[10]);
        Live().Should().Be(before);
        decoder.LastTrace!.Should().OnlyContain(t => t.Count == 400);
    }

    private sealed class Progress2(Action<GenerationProgress> onReport) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => onReport(value);
    }
}
