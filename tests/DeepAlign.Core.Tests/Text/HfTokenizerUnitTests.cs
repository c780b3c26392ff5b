using DeepAlign.Text;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>WordLevel tokenizer (hand-written tokenizer.json), loader errors, special-token metadata.</summary>
public sealed class HfTokenizerUnitTests
{
    private static HfTokenizer WordLevel() => HfTokenizer.FromPretrained(TextTestAssets.FixturePath("wordlevel"));

    [Fact]
    public void WordLevel_EncodesWordsUnknownsAndSpecialTokens()
    {
        var t = WordLevel();
        t.Encode("sort the list : 3 1 2").Should().Equal(7, 8, 9, 13, 10, 11, 12);
        t.Encode("sort  banana\tlist\n").Should().Equal(7, 0, 9);
        t.Encode("<|im_start|>user sort<|im_end|>").Should().Equal(2, 4, 7, 3);
        t.Encode("").Should().BeEmpty();
        t.Decode([7, 8, 9]).Should().Be("sort the list");
        t.Decode([2, 4, 7, 3], skipSpecialTokens: true).Should().Be("user sort");
    }

    [Fact]
    public void WordLevel_SpecialTokenMetadata_ComesFromTheConfigFiles()
    {
        var t = WordLevel();
        t.VocabSize.Should().Be(21);
        t.BosTokenId.Should().BeNull();
        t.EosTokenId.Should().Be(3);
        t.EosTokenIds.Should().BeEquivalentTo([3, 1]);
        t.PadTokenId.Should().Be(1);
        t.UnkTokenId.Should().Be(0);
        t.SpecialTokenIds.Should().BeEquivalentTo([0, 1, 2, 3]);
        t.GetVocabulary()["Sure"].Should().Be(14);
        t.IdToToken(16).Should().Be("can't");
        t.TokenToId("nope").Should().BeNull();
        t.Encode("sort", addSpecialTokens: true).Should().Equal(7);
    }

    [Fact]
    public void RealTokenizers_ReportTheirSpecialTokens()
    {
        var l2 = TextTestAssets.Tokenizer("llama2");
        (l2.BosTokenId, l2.EosTokenId, l2.VocabSize, l2.AddsBosToken).Should().Be((1, 2, 32000, true));
        var l3 = TextTestAssets.Tokenizer("llama3");
        (l3.BosTokenId, l3.EosTokenId, l3.VocabSize).Should().Be((128000, 128001, 128256));
        l3.TokenToId("<|eot_id|>").Should().Be(128009);
        var q = TextTestAssets.Tokenizer("qwen3");
        (q.BosTokenId, q.EosTokenId, q.PadTokenId, q.VocabSize).Should().Be((null, 151645, 151643, 151669));
        q.GetVocabulary().Should().HaveCount(151669);
        l2.GetVocabulary().Should().NotEqual(l3.GetVocabulary());
    }

    [Fact]
    public void Decode_RejectsIdsOutsideTheVocabulary()
    {
        var act = () => WordLevel().Decode([5, 99]);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*99*");
    }

    [Theory]
    [InlineData("\"model\": {\"type\": \"Unigram\", \"vocab\": []}", "*model type 'Unigram'*")]
    [InlineData("\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}", "*normalizer type 'BertNormalizer'*")]
    [InlineData("\"pre_tokenizer\": {\"type\": \"Digits\"}, \"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}", "*pre_tokenizer type 'Digits'*")]
    [InlineData("\"decoder\": {\"type\": \"CTC\"}, \"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}}", "*decoder type 'CTC'*")]
    public void UnsupportedTypes_ThrowTokenizerFormatExceptionNamingThem(string body, string message)
    {
        var dir = Directory.CreateTempSubdirectory("deepalign-tok-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "tokenizer.json"), "{" + body + "}");
            var act = () => HfTokenizer.FromPretrained(dir.FullName);
            act.Should().Throw<TokenizerFormatException>().WithMessage(message);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void MissingFilesAndBadJson_ThrowNamingTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("deepalign-tok-");
        try
        {
            var missing = () => HfTokenizer.FromPretrained(dir.FullName);
            missing.Should().Throw<FileNotFoundException>().WithMessage("*tokenizer.json*");
            File.WriteAllText(Path.Combine(dir.FullName, "tokenizer.json"), "{\n  \"model\": {\"type\": \"WordLevel\",\n \"vocab\": {\"a\": 0,}");
            var bad = () => HfTokenizer.FromPretrained(dir.FullName);
            bad.Should().Throw<FormatException>().WithMessage("*tokenizer.json*line*");
        }
        finally { dir.Delete(recursive: true); }
        var noDir = () => HfTokenizer.FromPretrained("/nonexistent/model");
        noDir.Should().Throw<DirectoryNotFoundException>();
    }
}

/// <summary>
/// The Mistral-v0.3 style of the same SentencePiece-BPE vocabulary (no normalizer; Metaspace pre-tokenizer with
/// prepend_scheme "first", split false) must give the same ids as the Prepend/Replace normaliser style on text
/// without added tokens.
/// </summary>
public sealed class MetaspaceVariantTests
{
    [Fact]
    public void MetaspaceFirst_EqualsPrependReplace_OnPlainText()
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(TextTestAssets.ModelDir("llama2"), "tokenizer.json")))!;
        json["normalizer"] = null;
        json["pre_tokenizer"] = System.Text.Json.Nodes.JsonNode.Parse("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\",\"split\":false}");
        var dir = Directory.CreateTempSubdirectory("deepalign-metaspace-");
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "tokenizer.json"), json.ToJsonString());
            var metaspace = HfTokenizer.FromPretrained(dir.FullName);
            var legacy = TextTestAssets.Tokenizer("llama2");
            var corpus = TextTestAssets.Fixture("tokenizer-reference.json").RootElement.GetProperty("corpus").EnumerateArray()
                .Select(x => x.GetString()!).Where(s => !s.Contains('<') && !s.StartsWith(' ') && !s.StartsWith('\u2581')).ToList();
            corpus.Count.Should().BeGreaterThan(150);
            foreach (var s in corpus)
            {
                metaspace.Encode(s).Should().Equal(legacy.Encode(s), System.Text.Json.JsonSerializer.Serialize(s));
                metaspace.Decode(metaspace.Encode(s)).Should().Be(legacy.Decode(legacy.Encode(s)));
            }
            metaspace.Encode(" Hello").Should().Equal(metaspace.Encode("Hello"));
            // "first": only the section at the start of the text gets the prefix.
            metaspace.Encode("a</s>b").Should().Equal([.. legacy.Encode("a"), 2, metaspace.TokenToId("b")!.Value]);
        }
        finally { dir.Delete(recursive: true); }
    }
}
