using System.Buffers;
using System.Text;
using System.Text.Json;
using DeepAlign.Text;
using FluentAssertions;
using Microsoft.ML.Tokenizers;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>
/// <see cref="HfTokenizer.AsMLTokenizer"/>: the ML.Tokenizers contract over the real tokenizer.json files — ids, offsets
/// that tile the input and agree with the tokens' bytes, counts, cuts by token count, decode.
/// </summary>
public sealed class MLTokenizerAdapterTests
{
    public static TheoryData<string> Names => new() { "llama2", "llama3", "qwen3" };

    private static string Show(string s) => JsonSerializer.Serialize(s);

    [Theory]
    [MemberData(nameof(Names))]
    public void OffsetPath_GivesTheReferenceIds_ForEveryCorpusString(string name)
    {
        // The offsets path runs its own (aligned) copy of every pipeline stage; it must not change a single id.
        using var reference = TextTestAssets.Fixture("tokenizer-reference.json");
        var corpus = reference.RootElement.GetProperty("corpus").EnumerateArray().Select(x => x.GetString()!).ToArray();
        var expected = reference.RootElement.GetProperty("tokenizers").GetProperty(name).GetProperty("ids").EnumerateArray()
            .Select(a => a.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
        var ml = TextTestAssets.Tokenizer(name).AsMLTokenizer();
        var failures = new List<string>();
        for (var i = 0; i < corpus.Length; i++)
            if (!ml.EncodeToTokens(corpus[i], out _).Select(t => t.Id).SequenceEqual(expected[i])) failures.Add($"#{i} {Show(corpus[i])}");
        failures.Should().BeEmpty();
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Offsets_TileTheInput_AndEveryTokenRunsBytesEqualItsSlice(string name)
    {
        var tok = TextTestAssets.Tokenizer(name);
        var ml = tok.AsMLTokenizer();
        var added = MLTokenizerAssets.AddedTokens(name);
        foreach (var text in MLTokenizerAssets.Corpus)
        {
            var tokens = ml.EncodeToTokens(text, out var normalized);
            normalized.Should().BeNull();
            // Tiling: contiguous, in order, from 0 to the end.
            var at = 0;
            foreach (var t in tokens)
            {
                t.Offset.Start.Value.Should().Be(at, $"token {Show(t.Value)} of {Show(text)}");
                t.Offset.End.Value.Should().BeGreaterThanOrEqualTo(at);
                at = t.Offset.End.Value;
            }
            at.Should().Be(text.Length, Show(text));
            string.Concat(tokens.Select(t => text[t.Offset])).Should().Be(text);

            // Content: after each token, the bytes of the tokens so far (since the last special token) are the UTF-8 bytes of
            // the text they own, followed by at most the leading bytes of the next character (a character split over tokens).
            // Byte-level: a token string's bytes; SentencePiece: ▁ is a space, <0xNN> a byte, and one ▁ is inserted at the start
            // of each text section. (Qwen3 strings that NFC rewrites and Llama-2 strings with a literal ▁ are checked elsewhere.)
            if (name == "qwen3" && !text.IsNormalized(NormalizationForm.FormC)) continue;
            if (name == "llama2" && text.Contains('▁')) continue;
            var sectionStart = 0;
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                if (added.TryGetValue(t.Value, out var addedId) && addedId == t.Id)
                {
                    text[t.Offset].Should().Be(t.Value);
                    sectionStart = t.Offset.End.Value;
                    bytes.Clear();
                    continue;
                }
                bytes.AddRange(TokenBytes(name, t.Value));
                var owned = Encoding.UTF8.GetBytes(text[sectionStart..t.Offset.End.Value]).ToList();
                if (name == "llama2") owned.Insert(0, (byte)' ');
                bytes.Take(owned.Count).Should().Equal(owned, $"tokens up to {Show(t.Value)} of {Show(text)} own {Show(text[sectionStart..t.Offset.End.Value])}");
                var rest = bytes.Skip(owned.Count).ToArray();
                if (rest.Length == 0) continue;
                var end = t.Offset.End.Value;
                var next = Encoding.UTF8.GetBytes(text.Substring(end, char.IsHighSurrogate(text[end]) ? 2 : 1));
                rest.Length.Should().BeLessThan(next.Length, $"only part of the next character may follow ({Show(text)})");
                next.Take(rest.Length).Should().Equal(rest);
            }
        }
    }

    private static byte[] TokenBytes(string name, string token)
    {
        if (name != "llama2") return MLTokenizerAssets.ByteLevelBytes(token);
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal)) return [Convert.ToByte(token[3..5], 16)];
        return Encoding.UTF8.GetBytes(token.Replace('▁', ' '));
    }

    [Fact]
    public void Offsets_MatchMLTiktoken_OnEveryTokenThatIsAWholeRunOfCharacters()
    {
        // ML.Tokenizers' tiktoken reports offsets too; wherever a token starts and ends on character boundaries both agree.
        var ours = TextTestAssets.Tokenizer("llama3").AsMLTokenizer();
        var tik = MLTokenizerAssets.Tiktoken("llama3");
        var compared = 0;
        foreach (var text in MLTokenizerAssets.Corpus)
        {
            var a = ours.EncodeToTokens(text, out _);
            var b = tik.EncodeToTokens(text, out _);
            a.Select(t => t.Id).Should().Equal(b.Select(t => t.Id), Show(text));
            for (var i = 0; i < a.Count; i++)
            {
                var whole = a[i].Offset.End.Value > a[i].Offset.Start.Value
                            && Encoding.UTF8.GetBytes(text[a[i].Offset]).SequenceEqual(MLTokenizerAssets.ByteLevelBytes(a[i].Value));
                if (!whole) continue;
                (a[i].Offset.Start.Value, a[i].Offset.End.Value).Should().Be((b[i].Offset.Start.Value, b[i].Offset.End.Value), $"token {i} of {Show(text)}");
                compared++;
            }
        }
        compared.Should().BeGreaterThan(1500);
    }

    [Fact]
    public void AnEmojiSplitOverSeveralTokens_BelongsToTheTokenThatCompletesIt()
    {
        // U+1FAE0 (4 UTF-8 bytes) is not one Llama-3 token; ML.Tokenizers' tiktoken gives the ids independently.
        const string text = "a\U0001FAE0b";
        var ids = MLTokenizerAssets.Tiktoken("llama3").EncodeToIds(text);
        ids.Count.Should().BeGreaterThan(3, "the emoji takes at least two tokens");
        var tokens = TextTestAssets.Tokenizer("llama3").AsMLTokenizer().EncodeToTokens(text, out _);
        tokens.Select(t => t.Id).Should().Equal(ids);
        var ranges = tokens.Select(t => (t.Offset.Start.Value, t.Offset.End.Value)).ToArray();
        var expected = new List<(int, int)> { (0, 1) };
        for (var k = 1; k < ids.Count - 2; k++) expected.Add((1, 1));
        expected.Add((1, 3));
        expected.Add((3, 4));
        ranges.Should().Equal(expected);
    }

    [Fact]
    public void NfcRewrites_BelongToTheTokenThatCompletesTheRewrittenText()
    {
        // Qwen3 normalizes to NFC: "e" + U+0301 (2 chars) becomes "é" (1 char), whose tokens own both input chars.
        var ml = TextTestAssets.Tokenizer("qwen3").AsMLTokenizer();
        const string text = "Cafe\u0301 ok";
        var tokens = ml.EncodeToTokens(text, out _);
        tokens.Select(t => t.Id).Should().Equal(MLTokenizerAssets.Tiktoken("qwen3", nfc: true).EncodeToIds(text));
        var owner = tokens.Single(t => t.Offset.Start.Value <= 3 && t.Offset.End.Value >= 5);
        Encoding.UTF8.GetString(MLTokenizerAssets.ByteLevelBytes(owner.Value)).Should().EndWith("é");
        string.Concat(tokens.Select(t => text[t.Offset])).Should().Be(text);
    }

    [Fact]
    public void SpecialTokens_OwnTheirText_AndAddedBosHasAnEmptyRange()
    {
        var tok = TextTestAssets.Tokenizer("llama2");
        var tokens = tok.AsMLTokenizer(addSpecialTokens: true).EncodeToTokens("Hi</s>", out _);
        tokens[0].Should().Be(new EncodedToken(1, "<s>", 0..0));
        tokens[^1].Should().Be(new EncodedToken(2, "</s>", 2..6));
        tokens.Select(t => t.Id).Should().Equal(tok.Encode("Hi</s>", addSpecialTokens: true));
        tok.AsMLTokenizer(addSpecialTokens: true).AddSpecialTokens.Should().BeTrue();
    }

    [Fact]
    public void WordLevel_WhitespaceBelongsToNoToken()
    {
        var tok = HfTokenizer.FromPretrained(TextTestAssets.FixturePath("wordlevel"));
        var tokens = tok.AsMLTokenizer().EncodeToTokens("sort  banana\tlist", out _);
        tokens.Select(t => (t.Id, t.Value, t.Offset.Start.Value, t.Offset.End.Value))
            .Should().Equal((7, "sort", 0, 4), (0, "<unk>", 6, 12), (9, "list", 13, 17));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void CountsDecodeAndRoundTrip_AgreeWithTheTokenizer(string name)
    {
        var tok = TextTestAssets.Tokenizer(name);
        Tokenizer ml = tok.AsMLTokenizer();
        var roundTrips = 0;
        foreach (var text in MLTokenizerAssets.Corpus)
        {
            var ids = ml.EncodeToIds(text);
            ids.Should().Equal(tok.Encode(text));
            ml.CountTokens(text).Should().Be(ids.Count);
            ml.CountTokens(text.AsSpan()).Should().Be(ids.Count);
            ml.EncodeToIds(text.AsSpan()).Should().Equal(ids);
            ml.GetIndexByTokenCount(text, int.MaxValue, out _, out var all).Should().Be(text.Length);
            all.Should().Be(ids.Count);
            var decoded = ml.Decode(ids);
            decoded.Should().Be(tok.Decode(ids));
            if (decoded == text) roundTrips++;
        }
        // Llama-2 decoding drops the first leading space, and Qwen3 returns NFC text, so not every string round-trips.
        roundTrips.Should().BeGreaterThan(MLTokenizerAssets.Corpus.Length * 85 / 100);
    }

    [Fact]
    public void MaxTokenCount_CutsOnlyBetweenCharacters_FromEitherEnd()
    {
        const string text = "a\U0001FAE0b";
        Tokenizer ml = TextTestAssets.Tokenizer("llama3").AsMLTokenizer();
        var ids = ml.EncodeToIds(text);
        var n = ids.Count; // a, the emoji's tokens, b

        // Any cut inside the emoji falls back to after "a".
        for (var max = 1; max < n - 1; max++)
        {
            ml.EncodeToIds(text, max, out var normalized, out var consumed).Should().Equal(ids.Take(1), $"max {max}");
            normalized.Should().BeNull();
            consumed.Should().Be(1);
            ml.GetIndexByTokenCount(text, max, out _, out var count).Should().Be(1);
            count.Should().Be(1);
            ml.CountTokens(text).Should().Be(n);
        }
        ml.EncodeToIds(text, n - 1, out _, out var c1).Should().Equal(ids.Take(n - 1));
        c1.Should().Be(3);
        ml.EncodeToTokens(text, out _).Should().HaveCount(n);

        // From the end: any suffix that would start inside the emoji shrinks to "b".
        for (var max = 1; max < n - 1; max++)
        {
            ml.GetIndexByTokenCountFromEnd(text, max, out _, out var count).Should().Be(3, $"max {max}");
            count.Should().Be(1);
        }
        ml.GetIndexByTokenCountFromEnd(text, n - 1, out _, out var most).Should().Be(1);
        most.Should().Be(n - 1);
        ml.GetIndexByTokenCountFromEnd(text, n, out _, out var every).Should().Be(0);
        every.Should().Be(n);

        var act = () => ml.EncodeToIds(text, 0, out _, out _);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void DecodeIntoASpan_WritesTheLongestWholePrefix()
    {
        var tok = TextTestAssets.Tokenizer("llama3");
        Tokenizer ml = tok.AsMLTokenizer();
        const string text = "ok \U0001FAE0 done";
        var ids = ml.EncodeToIds(text);

        var big = new char[64];
        ml.Decode(ids, big, out var allIds, out var allChars).Should().Be(OperationStatus.Done);
        new string(big, 0, allChars).Should().Be(text);
        allIds.Should().Be(ids.Count);

        // Room for 4 chars: the space before the emoji is in the emoji's first token, so only "ok" is final.
        var small = new char[4];
        ml.Decode(ids, small, out var someIds, out var someChars).Should().Be(OperationStatus.DestinationTooSmall);
        new string(small, 0, someChars).Should().Be("ok");
        tok.Decode(ids.Take(someIds)).Should().Be("ok");
        var eight = new char[8];
        ml.Decode(ids, eight, out var moreIds, out var moreChars).Should().Be(OperationStatus.DestinationTooSmall);
        new string(eight, 0, moreChars).Should().Be("ok \U0001FAE0");
        tok.Decode(ids.Take(moreIds)).Should().Be("ok \U0001FAE0");
    }

    [Fact]
    public void AsTextTokenizer_OfTheAdapter_IsTheHfTokenizerItself()
    {
        var tok = TextTestAssets.Tokenizer("qwen3");
        tok.AsMLTokenizer().AsTextTokenizer().Should().BeSameAs(tok);
        tok.AsMLTokenizer().HfTokenizer.Should().BeSameAs(tok);
    }
}
