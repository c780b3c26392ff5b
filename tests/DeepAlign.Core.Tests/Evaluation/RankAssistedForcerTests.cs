using DeepAlign.Evaluation;
using DeepAlign.Generation;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Evaluation.Attacks;

namespace DeepAlign.Tests.Evaluation;

/// <summary>Hand cases for the rank-assisted attacker and the teacher-forcing perplexity forcer, on table models.</summary>
public sealed class RankAssistedForcerTests
{
    public RankAssistedForcerTests() => torch.set_num_threads(1);

    // Vocabulary 0..7; 7 is the end-of-turn id. Prompt [1]; harmful reference h = [3, 6, 5].
    private static TableCausalLanguageModel Target() => TableCausalLanguageModel.CreateBuilder(8)
        .When(1).Tokens((2, 0.5), (3, 0.3), (4, 0.15), (0, 0.01), (5, 0.01), (6, 0.01), (7, 0.02))   // top-2 {2, 3}: h_1 = 3 is in it
        .When(1, 3).Tokens((4, 0.6), (5, 0.3), (6, 0.05), (2, 0.05))                                  // top-2 {4, 5}: h_2 = 6 is not
        .When(1, 3, 5).Tokens((7, 0.9), (2, 0.1))                                                     // free again: greedy picks 7
        .When(1, 3, 4).Tokens((7, 0.9), (2, 0.1))
        .WithSpecialTokens(eos: [7], pad: 0)
        .Build();

    // The base rates 6 highest overall (outside the target's top 2) and, among {4, 5}, 5 above 4.
    private static TableCausalLanguageModel Base() => TableCausalLanguageModel.CreateBuilder(8)
        .When(1).Peaked(2, 0.9)
        .When(1, 3).Tokens((6, 0.5), (5, 0.3), (4, 0.2))
        .Build();

    [Fact]
    public void Forces_reference_token_when_in_target_top_r_else_base_favourite_among_top_r_then_lets_target_continue()
    {
        using var target = Target();
        using var baseModel = Base();
        var forcer = new RankAssistedForcer(baseModel, [new long[] { 3, 6, 5 }], steps: 2, topR: 2);
        using var generator = new Generator(target);
        var result = generator.Generate([new GenerationRequest(new long[] { 1 })], new GenerationOptions { MaxNewTokens = 10, TokenForcer = forcer })[0];

        result.GeneratedIds.Should().Equal(3L, 5L, 7L);   // h_1; base's pick among {4, 5} (not its overall favourite 6); target's own eos
        forcer.ForcedFromReference.Should().Be(1);
        forcer.ForcedFromBase.Should().Be(1);
    }

    [Fact]
    public void Without_the_attacker_the_target_answers_its_greedy_choice()
    {
        using var target = Target();
        using var generator = new Generator(target);
        var result = generator.Generate([new GenerationRequest(new long[] { 1 })], new GenerationOptions { MaxNewTokens = 3 })[0];
        result.GeneratedIds[0].Should().Be(2L); // the target's own favourite, which the attacker replaced by h_1 = 3
    }

    [Fact]
    public void With_a_wide_candidate_set_every_reference_token_is_forced()
    {
        using var target = Target();
        using var baseModel = Base();
        var forcer = new RankAssistedForcer(baseModel, [new long[] { 3, 6, 5 }], steps: 2, topR: 8);
        using var generator = new Generator(target);
        var result = generator.Generate([new GenerationRequest(new long[] { 1 })], new GenerationOptions { MaxNewTokens = 3, StopTokenIds = [], TokenForcer = forcer })[0];
        result.GeneratedIds.Take(2).Should().Equal(3L, 6L);
        forcer.ForcedFromReference.Should().Be(2);
        forcer.ForcedFromBase.Should().Be(0);
    }

    [Fact]
    public void Reference_forcer_accumulates_the_negative_log_likelihood_of_the_reference()
    {
        using var target = Target();
        var forcer = new SafetyEvaluator.ReferenceForcer([new long[] { 3, 4, 7 }]);
        using var generator = new Generator(target);
        var result = generator.Generate([new GenerationRequest(new long[] { 1 })], new GenerationOptions { MaxNewTokens = 5, TokenForcer = forcer })[0];
        result.GeneratedIds.Should().Equal(3L, 4L, 7L);
        forcer.Tokens.Should().Be(3);
        forcer.NegativeLogLikelihood.Should().BeApproximately(-(Math.Log(0.3) + Math.Log(0.6) + Math.Log(0.9)), 1e-5);
    }
}
