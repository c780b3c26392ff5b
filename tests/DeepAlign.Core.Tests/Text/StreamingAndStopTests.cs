using System.Text.Json;
using DeepAlign.Text;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

public sealed class StreamingDetokenizerTests
{
    private static string[] Corpus() => TextTestAssets.Fixture("tokenizer-reference.json").RootElement.GetProperty("corpus")
        .EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    public void Deltas_ConcatenateToTheFullDecode_AndNeverEndInsideACharacter(string name)
    {
        var tok = TextTestAssets.Tokenizer(name);
        foreach (var text in Corpus())
        {
            var ids = tok.Encode(text);
            var s = new StreamingDetokenizer(tok);
            var parts = new List<string>();
            foreach (var id in ids)
            {
                var d = s.Add(id);
                if (d.Length > 0)
                {
                    d.Should().NotEndWith("\uFFFD", "a delta must not end in an incomplete character ({0})", JsonSerializer.Serialize(text));
                    char.IsHighSurrogate(d[^1]).Should().BeFalse();
                }
                parts.Add(d);
            }
            parts.Add(s.Flush());
            string.Concat(parts).Should().Be(tok.Decode(ids), JsonSerializer.Serialize(text));
        }
    }

    [Fact]
    public void Llama2_KeepsTheLeadingSpaceOfLaterWords()
    {
        var tok = TextTestAssets.Tokenizer("llama2");
        var ids = tok.Encode("Hello big world");
        var s = new StreamingDetokenizer(tok);
        var deltas = ids.Select(s.Add).Where(d => d.Length > 0).ToList();
        deltas.Should().Equal("Hello", " big", " world");
    }

    [Fact]
    public void ByteLevel_HoldsBackSplitEmojiUntilComplete()
    {
        var tok = TextTestAssets.Tokenizer("llama3");
        var ids = tok.Encode("a🫠");
        ids.Count.Should().BeGreaterThan(2, "the emoji is split over byte tokens");
        var s = new StreamingDetokenizer(tok);
        var deltas = ids.Select(s.Add).ToList();
        deltas[0].Should().Be("a");
        deltas.Skip(1).Take(ids.Count - 2).Should().OnlyContain(d => d == "");
        deltas[^1].Should().Be("🫠");
    }

    [Fact]
    public void Flush_ReleasesAnIncompleteTail_AsDecodeDoes()
    {
        var tok = TextTestAssets.Tokenizer("llama3");
        var ids = tok.Encode("🫠").Take(2).ToList();
        var s = new StreamingDetokenizer(tok);
        ids.Select(s.Add).Should().OnlyContain(d => d == "");
        s.Flush().Should().Be(tok.Decode(ids)).And.Contain("\uFFFD");
    }

    [Fact]
    public void SkipSpecialTokens_DropsThem()
    {
        var tok = TextTestAssets.Tokenizer("qwen3");
        var ids = tok.Encode("Hi<|im_end|>");
        var s = new StreamingDetokenizer(tok, skipSpecialTokens: true);
        (s.Add(ids) + s.Flush()).Should().Be("Hi");
    }
}

public sealed class StopStringMatcherTests
{
    [Fact]
    public void FindsAStopStringSplitAcrossDeltas_AndCutsBeforeIt()
    {
        var m = new StopStringMatcher(["<|user|>", "\n\nHuman:"]);
        var shown = m.Push("Hello there.") + m.Push("\n\nHu") + m.Push("man: next");
        m.Stopped.Should().BeTrue();
        m.MatchedStopString.Should().Be("\n\nHuman:");
        m.StopIndex.Should().Be("Hello there.".Length);
        shown.Should().Be("Hello there.");
        m.Push("more").Should().BeEmpty();
    }

    [Fact]
    public void HoldsBackOnlyWhatCouldStartAStopString()
    {
        var m = new StopStringMatcher(["STOP"]);
        m.Push("abcS").Should().Be("abc");
        m.Push("T").Should().Be("");
        m.Push("x").Should().Be("STx");
        m.Push("ST").Should().Be("");
        m.Flush().Should().Be("ST");
        m.Stopped.Should().BeFalse();
        m.ReleasedText.Should().Be("abcSTxST");
    }

    [Fact]
    public void EarliestMatchWins_AndEmptyStopStringsAreRejected()
    {
        var m = new StopStringMatcher(["b", "abc"]);
        m.Push("xxabc");
        m.MatchedStopString.Should().Be("abc");
        m.StopIndex.Should().Be(2);
        var act = () => new StopStringMatcher([""]);
        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void RandomSplits_GiveTheSameCutAsSearchingTheWholeText()
    {
        var rng = new Random(1234);
        var stops = new[] { "</s>", "<|eot_id|>", "\nUser:" };
        for (var trial = 0; trial < 300; trial++)
        {
            var pieces = new[] { "a", "b", " ", "\n", "<", "/", "s", ">", "User:", "<|eot", "_id|>", "é", "😀" };
            var text = string.Concat(Enumerable.Range(0, rng.Next(1, 30)).Select(_ => pieces[rng.Next(pieces.Length)]));
            var expectedCut = stops.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
            var m = new StopStringMatcher(stops);
            var shown = "";
            for (var i = 0; i < text.Length;)
            {
                var len = Math.Min(text.Length - i, rng.Next(1, 5));
                if (char.IsHighSurrogate(text[i + len - 1]) && i + len < text.Length) len++;
                shown += m.Push(text.Substring(i, len));
                i += len;
            }
            shown += m.Flush();
            if (expectedCut < 0) { m.Stopped.Should().BeFalse(); shown.Should().Be(text); }
            else { m.StopIndex.Should().Be(expectedCut, text); shown.Should().Be(text[..expectedCut]); }
        }
    }
}

public sealed class ConversationEncoderTests
{
    [Fact]
    public void Llama3_PromptEndsWithAssistantHeader_ResponseSeparate_EotAppended()
    {
        var tok = TextTestAssets.Tokenizer("llama3");
        var enc = new ConversationEncoder(tok, ChatTemplate.For(tok, ChatFormat.Llama3));
        var msgs = new[] { ChatMessage.System("Be safe."), ChatMessage.User("How do I pick a lock?") };
        var e = enc.Encode(msgs, "I can't help with that.");
        var prompt = ChatTemplate.For(tok, ChatFormat.Llama3).Render(msgs);
        e.PromptIds.Should().Equal(tok.Encode(prompt));
        e.PromptIds[0].Should().Be(128000, "the template writes <|begin_of_text|> itself");
        e.PromptIds.Count(id => id == 128000).Should().Be(1, "no double BOS");
        e.ResponseIds.Should().Equal(tok.Encode("I can't help with that."));
        e.EndOfTurnId.Should().Be(128009);
        e.Ids.Should().Equal([.. e.PromptIds, .. e.ResponseIds, 128009]);
        e.ResponseMask.Should().Equal([.. Enumerable.Repeat(0, e.PromptIds.Count), .. Enumerable.Repeat(1, e.ResponseIds.Count + 1)]);
        e.ResponseStart.Should().Be(e.PromptIds.Count);
        e.EndOfTurnIndex.Should().Be(e.Ids.Count - 1);
        tok.Decode(e.PromptIds.TakeLast(4)).Should().Be("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    [Fact]
    public void Llama2_TemplateWritesBos_TokenizerWouldToo_StillOnlyOneBos_EosEndsTurn()
    {
        var tok = TextTestAssets.Tokenizer("llama2");
        tok.AddsBosToken.Should().BeTrue();
        var enc = new ConversationEncoder(tok, ChatTemplate.For(tok, ChatFormat.Llama2));
        var e = enc.Encode([ChatMessage.User("Hi")], "Hello");
        e.PromptIds[0].Should().Be(1);
        e.PromptIds.Count(id => id == 1).Should().Be(1);
        e.EndOfTurnId.Should().Be(2);
        e.ResponseIds.Should().Equal(tok.Encode("Hello"));
        e.ResponseIds.Should().NotContain(1);
    }

    [Fact]
    public void TemplateWithoutBos_GetsTheTokenizersBos()
    {
        var tok = TextTestAssets.Tokenizer("llama2");
        var chatml = new ChatTemplate(ChatFormats.TemplateText(ChatFormat.ChatML), tok.BosToken, tok.EosToken, endOfTurnToken: "</s>");
        var e = new ConversationEncoder(tok, chatml).Encode([ChatMessage.User("Hi")], "Yo");
        e.PromptIds[0].Should().Be(1);
        e.PromptIds.Skip(1).Should().Equal(tok.Encode(chatml.Render([ChatMessage.User("Hi")])));
    }

    [Fact]
    public void Qwen3_ImEndEndsTheTurn_AndNoBos()
    {
        var tok = TextTestAssets.Tokenizer("qwen3");
        var e = new ConversationEncoder(tok, ChatTemplate.For(tok)).Encode([ChatMessage.User("Hi")], "Hello!");
        e.EndOfTurnId.Should().Be(151645);
        tok.Decode(e.PromptIds).Should().Be("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        var noEot = new ConversationEncoder(tok, ChatTemplate.For(tok)).Encode([ChatMessage.User("Hi")], "Hello!", appendEndOfTurn: false);
        noEot.EndOfTurnIndex.Should().BeNull();
        noEot.Ids.Should().HaveCount(e.Ids.Count - 1);
    }

    [Fact]
    public void WordLevelOrganism_ChatMlTemplate()
    {
        var tok = HfTokenizer.FromPretrained(TextTestAssets.FixturePath("wordlevel"));
        var e = new ConversationEncoder(tok, ChatTemplate.For(tok)).Encode([ChatMessage.User("sort the list : 3 1 2")], "I can't help with that .");
        e.PromptIds.Should().Equal(2, 4, 7, 8, 9, 13, 10, 11, 12, 3, 2, 5);
        e.ResponseIds.Should().Equal(15, 16, 17, 18, 19, 20);
        e.EndOfTurnId.Should().Be(3);
    }
}

public sealed class TextStreamerTests
{
    [Fact]
    public void StopsAtAStopStringSpreadOverTokens_AndNeverShowsIt()
    {
        var tok = TextTestAssets.Tokenizer("llama3");
        var ids = tok.Encode("The answer is 42.\nUser: next question");
        var s = new TextStreamer(tok, ["\nUser:"]);
        var shown = "";
        var fed = 0;
        foreach (var id in ids)
        {
            shown += s.Add(id);
            fed++;
            if (s.Stopped) break;
        }
        shown += s.Finish();
        s.Stopped.Should().BeTrue();
        shown.Should().Be("The answer is 42.");
        s.Text.Should().Be(shown);
        fed.Should().BeLessThan(ids.Count);
    }

    [Fact]
    public void WithoutStops_EmitsTheDecodeWithoutSpecialTokens()
    {
        var tok = TextTestAssets.Tokenizer("qwen3");
        var ids = tok.Encode("Héllo 🫠 wörld<|im_end|>");
        var s = new TextStreamer(tok);
        var shown = string.Concat(ids.Select(s.Add)) + s.Finish();
        shown.Should().Be("Héllo 🫠 wörld");
    }
}
