using DeepAlign.Generation;
using DeepAlign.Method.Contrastive;
using DeepAlign.Testing;
using DeepAlign.Core.Tests.Text;
using DeepAlign.Text;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Generator = DeepAlign.Generation.Generator;

namespace DeepAlign.Tests.Generation;

/// <summary>The shared text layer over the plain generator and the contrastive decoder, on the word-level organism tokenizer.</summary>
public class TextGeneratorTests
{
    public TextGeneratorTests() => torch.set_num_threads(1);

    private static HfTokenizer Tokenizer() => HfTokenizer.FromPretrained(TextTestAssets.FixturePath("wordlevel"));

    /// <summary>
    /// Chains over the word-level vocabulary: "Sure : 1 2 3 &lt;|im_end|&gt;" (14 13 11 12 10 3) and
    /// "I can't help with that . &lt;|im_end|&gt;" (15 16 17 18 19 20 3). After the assistant header (5) the first
    /// token is Sure with <paramref name="sure"/> and I with <paramref name="refuse"/>.
    /// </summary>
    private static TableCausalLanguageModel Model(double sure, double refuse)
    {
        var b = TableCausalLanguageModel.CreateBuilder(21).WithSpecialTokens(eos: new[] { 3 }, pad: 1);
        b.WhenEndsWith(5).Tokens((14, sure), (15, refuse));
        foreach (var (from, to) in new (long, long)[] { (14, 13), (13, 11), (11, 12), (12, 10), (10, 3), (15, 16), (16, 17), (17, 18), (18, 19), (19, 20), (20, 3) })
            b.WhenEndsWith(from).Peaked(to, 0.9);
        return b.Build();
    }

    private static string Prompt(HfTokenizer tok) => ChatTemplate.For(tok).Render(new[] { ChatMessage.User("sort the list : 3 1 2") });

    [Fact]
    public void Plain_generator_text_in_text_out()
    {
        var tok = Tokenizer();
        using var aligned = Model(sure: 0.5, refuse: 0.4);
        var text = new TextGenerator(new Generator(aligned), tok);
        var result = text.Generate(new[] { new TextGenerationRequest(Prompt(tok)) }).Single();
        result.Sequence.PromptIds.Should().Equal(2, 4, 7, 8, 9, 13, 10, 11, 12, 3, 2, 5);
        result.Sequence.GeneratedIds.Should().Equal(14, 13, 11, 12, 10, 3);
        result.Text.Should().Be(tok.Decode(new[] { 14, 13, 11, 12, 10 }));
        result.Text.Should().StartWith("Sure");
        result.FinishReason.Should().Be(FinishReason.StopToken);
        result.StopString.Should().BeNull();
    }

    [Fact]
    public void Contrastive_decoder_through_the_same_text_layer_refuses_and_stops_on_a_string_spanning_tokens()
    {
        // The aligned model is shallowly aligned (Sure 0.5 vs I 0.4); the base complies (Sure 0.9, I 0.02).
        // Full rule, alpha = 1: s(Sure) = ln(0.25 / 0.9) < s(I) = ln(0.16 / 0.02), so the decoder refuses.
        var tok = Tokenizer();
        using var aligned = Model(sure: 0.5, refuse: 0.4);
        using var baseModel = Model(sure: 0.9, refuse: 0.02);
        using var decoder = new ContrastiveDecoder(aligned, baseModel);
        var text = new TextGenerator(decoder.Generator, tok);
        var options = new TextGenerationOptions { StopStrings = new[] { "help with" } };
        var result = text.Generate(new[] { new TextGenerationRequest(Prompt(tok)) }, options).Single();
        result.Sequence.GeneratedIds.Should().Equal(15, 16, 17, 18);
        result.FinishReason.Should().Be(FinishReason.StopCondition);
        result.StopString.Should().Be("help with");
        var full = tok.Decode(new[] { 15, 16, 17, 18 });
        result.Text.Should().Be(full[..full.IndexOf("help with", StringComparison.Ordinal)]);
        result.Text.Should().StartWith("I can't");
    }

    [Fact]
    public void Response_prefix_is_forced_and_the_text_is_the_continuation()
    {
        var tok = Tokenizer();
        using var aligned = Model(sure: 0.5, refuse: 0.4);
        var text = new TextGenerator(new Generator(aligned), tok);
        var results = text.Generate(new[]
        {
            new TextGenerationRequest(Prompt(tok)) { ResponsePrefix = "I can't" },
            new TextGenerationRequest(Prompt(tok)),
        }, new TextGenerationOptions { StopStrings = new[] { "2 3" } });
        results[0].Sequence.ForcedPrefixIds.Should().Equal(15, 16);
        results[0].Sequence.GeneratedIds.Should().Equal(17, 18, 19, 20, 3);
        results[0].Text.Trim().Should().Be(tok.Decode(new[] { 17, 18, 19, 20 }).Trim());
        results[0].StopString.Should().BeNull();
        results[1].Sequence.GeneratedIds.Should().Equal(14, 13, 11, 12, 10);
        results[1].StopString.Should().Be("2 3");
        results[1].Text.Should().NotContain("2 3");
    }

    [Fact]
    public void Bad_options_are_rejected()
    {
        FluentActions.Invoking(() => new TextGenerationOptions { StopStrings = new[] { "" } }.Validate()).Should().Throw<ArgumentException>().WithParameterName("StopStrings");
        FluentActions.Invoking(() => new TextGenerationOptions { Generation = null! }.Validate()).Should().Throw<ArgumentException>().WithParameterName("Generation");
    }
}
