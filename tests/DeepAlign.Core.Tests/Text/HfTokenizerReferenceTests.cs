using System.Text.Json;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>Ids and decodes of the three real tokenizers against @lenml/tokenizers (fixture from tests/scripts/text/make-tokenizer-fixtures.mjs).</summary>
public sealed class HfTokenizerReferenceTests
{
    private static readonly Lazy<JsonDocument> Reference = new(() => TextTestAssets.Fixture("tokenizer-reference.json"));

    private static string[] Corpus => Reference.Value.RootElement.GetProperty("corpus").EnumerateArray().Select(x => x.GetString()!).ToArray();

    private static JsonElement Ref(string name) => Reference.Value.RootElement.GetProperty("tokenizers").GetProperty(name);

    [Fact]
    public void Corpus_HasAtLeast200Strings() => Corpus.Length.Should().BeGreaterThanOrEqualTo(200);

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Encode_MatchesReferenceIds_ForEveryCorpusString(string name)
    {
        var tok = TextTestAssets.Tokenizer(name);
        var expected = Ref(name).GetProperty("ids").EnumerateArray().Select(a => a.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
        var corpus = Corpus;
        var failures = new List<string>();
        for (var i = 0; i < corpus.Length; i++)
        {
            var actual = tok.Encode(corpus[i]).ToArray();
            if (!actual.SequenceEqual(expected[i]))
                failures.Add($"#{i} {JsonSerializer.Serialize(corpus[i])}: expected [{string.Join(",", expected[i])}] got [{string.Join(",", actual)}]");
        }
        failures.Should().BeEmpty();
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Encode_WithSpecialTokens_MatchesReference(string name)
    {
        var tok = TextTestAssets.Tokenizer(name);
        var corpus = Corpus;
        var count = 0;
        foreach (var p in Ref(name).GetProperty("idsWithSpecial").EnumerateObject())
        {
            var i = int.Parse(p.Name);
            tok.Encode(corpus[i], addSpecialTokens: true).Should().Equal(p.Value.EnumerateArray().Select(x => x.GetInt32()), $"string #{i} {JsonSerializer.Serialize(corpus[i])}");
            count++;
        }
        count.Should().BeGreaterThan(30);
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Decode_MatchesReference_AndRoundTripsWhereReferenceDoes(string name)
    {
        var tok = TextTestAssets.Tokenizer(name);
        var ids = Ref(name).GetProperty("ids").EnumerateArray().Select(a => a.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
        var decoded = Ref(name).GetProperty("decoded").EnumerateArray().Select(x => x.GetString()!).ToArray();
        var corpus = Corpus;
        var roundTrips = 0;
        for (var i = 0; i < corpus.Length; i++)
        {
            var text = tok.Decode(ids[i]);
            text.Should().Be(decoded[i], $"decode of string #{i} {JsonSerializer.Serialize(corpus[i])}");
            if (decoded[i] == corpus[i])
            {
                tok.Decode(tok.Encode(corpus[i])).Should().Be(corpus[i]);
                roundTrips++;
            }
        }
        roundTrips.Should().BeGreaterThan(corpus.Length * 9 / 10);
    }
}
