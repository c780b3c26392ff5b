using System.Text;
using System.Text.Json;
using DeepAlign.Text;
using FluentAssertions;
using Microsoft.ML.Tokenizers;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>
/// <see cref="MLTextTokenizer"/>: ML.Tokenizers' own tokenizers (built from the npm files) used wherever DeepAlign takes an
/// <see cref="ITextTokenizer"/> give the ids, token maps and streamed text of our <see cref="HfTokenizer"/>.
/// </summary>
public sealed class MLTextTokenizerTests
{
    public static TheoryData<string, string> Pairs => MLTokenizersParityTests.Pairs;

    private static readonly ChatMessage[] Conversation =
    [
        new("system", "You are a helpful assistant. Answer in one line."),
        new("user", "Sort the list 3, 1, 2 — and say «done» 😀 when you're finished. 日本語でも"),
    ];

    private const string Response = "Sure: 1, 2, 3.\n\nDone 😀 — 完了!";

    /// <summary>The ML tokenizer configured like the model folder's tokenizer_config.json (BOS/EOS/pad and add_bos_token).</summary>
    private static MLTextTokenizer Configured(string name, string kind)
    {
        var hf = TextTestAssets.Tokenizer(name);
        return new MLTextTokenizer(MLTokenizersParityTests.Reference(name, kind), new MLTextTokenizerOptions
        {
            Vocabulary = kind == "tiktoken" ? MLTextTokenizer.ReadTiktokenVocabulary(MLTokenizerAssets.TiktokenFile(name)) : null,
            SpecialTokens = MLTokenizerAssets.AddedTokens(name, special: true),
            AddedTokens = MLTokenizerAssets.AddedTokens(name, special: false),
            BosToken = hf.BosToken,
            EosToken = hf.EosToken,
            PadToken = hf.PadToken,
            AddBosToken = hf.AddsBosToken,
        });
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void ThroughConversationEncoder_TheIdsEqualTheHfTokenizers(string name, string kind)
    {
        var hf = TextTestAssets.Tokenizer(name);
        var ml = Configured(name, kind);
        var format = name == "llama2" ? ChatFormat.Llama2 : ChatFormat.Auto;
        var ours = ConversationEncoder.For(hf, format);
        var theirs = new ConversationEncoder(ml, new ChatTemplate(ours.Template.Source, ml.BosToken, ml.EosToken));

        var a = ours.Encode(Conversation, Response);
        var b = theirs.Encode(Conversation, Response);
        b.Ids.Should().Equal(a.Ids);
        b.ResponseMask.Should().Equal(a.ResponseMask);
        theirs.EndOfTurnId.Should().Be(ours.EndOfTurnId).And.NotBeNull();
        theirs.PadId.Should().Be(ours.PadId);
        theirs.PromptIds(Conversation).Should().Equal(ours.PromptIds(Conversation));
        theirs.Decode(b.Ids.Skip(b.ResponseStart).Select(i => (long)i)).Should().Be(ours.Decode(a.Ids.Skip(a.ResponseStart).Select(i => (long)i)));
        a.Ids.Count.Should().BeGreaterThan(40);
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void TheTokenMap_EqualsTheHfTokenizers(string name, string kind)
    {
        // Tiktoken's vocabulary read back in the GPT-2 byte-level alphabet is exactly the tokenizer.json vocabulary.
        var hf = TextTestAssets.Tokenizer(name);
        var ml = Configured(name, kind);
        VocabularyCheck.EnsureSameTokenMap(hf, ml, "hf", "ml");
        ml.VocabSize.Should().Be(hf.VocabSize);
        ml.BosTokenId.Should().Be(hf.BosTokenId);
        ml.EosTokenId.Should().Be(hf.EosTokenId);
        ml.PadTokenId.Should().Be(hf.PadTokenId);
        ml.AddsBosToken.Should().Be(hf.AddsBosToken);
        for (var id = 0; id < hf.VocabSize; id += 97)
        {
            ml.IdToToken(id).Should().Be(hf.IdToToken(id));
            ml.TokenToId(hf.IdToToken(id)!).Should().Be(id);
        }
        ml.SpecialTokenIds.Should().BeSubsetOf(hf.SpecialTokenIds.Concat(MLTokenizerAssets.AddedTokens(name).Values));
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Streaming_AndDecode_GiveTheHfTokenizersText(string name, string kind)
    {
        var hf = TextTestAssets.Tokenizer(name);
        var ml = Configured(name, kind);
        var checkedCount = 0;
        foreach (var text in MLTokenizerAssets.Corpus)
        {
            if (MLTokenizersParityTests.MayHitSentencePieceTie(kind, text)) continue;
            var ids = hf.Encode(text);
            var expected = hf.Decode(ids, skipSpecialTokens: true);
            // Byte-level decoding is the same everywhere; SentencePiece restarts its leading-space rule after a special token.
            if (name == "llama2" && ids.Any(hf.SpecialTokenIds.Contains)) continue;
            ml.Decode(ids, skipSpecialTokens: true).Should().Be(expected, JsonSerializer.Serialize(text));
            var stream = new StreamingDetokenizer(ml, skipSpecialTokens: true);
            var streamed = new StringBuilder();
            foreach (var id in ids)
            {
                var delta = stream.Add(id);
                if (delta.Length > 0) char.IsHighSurrogate(delta[^1]).Should().BeFalse();
                streamed.Append(delta);
            }
            streamed.Append(stream.Flush());
            streamed.ToString().Should().Be(expected, JsonSerializer.Serialize(text));
            checkedCount++;
        }
        checkedCount.Should().BeGreaterThan(250);
    }

    [Fact]
    public void SentencePieceRuns_AreDecodedTheSentencePieceWay()
    {
        // ML.Tokenizers 3.0.0 decodes [<0x09>, ▁, <0x0A>] to "\t\n" (it drops the "▁" after leading byte pieces); the
        // wrapper keeps the space, as HF's Llama-2 decoder and sentencepiece do.
        var hf = TextTestAssets.Tokenizer("llama2");
        int[] ids = [hf.TokenToId("<0x09>")!.Value, hf.TokenToId("▁")!.Value, hf.TokenToId("<0x0A>")!.Value];
        MLTokenizerAssets.Llama2SentencePiece().Decode(ids).Should().Be("\t\n");
        var ml = Configured("llama2", "sentencepiece");
        ml.Decode(ids).Should().Be("\t \n").And.Be(hf.Decode(ids));
        ml.Decode(hf.Encode(" leading and  double")).Should().Be(hf.Decode(hf.Encode(" leading and  double")));
    }

    [Fact]
    public void SpecialTokens_AreFoundInText_AndSkippedOnRequest()
    {
        var ml = Configured("llama3", "tiktoken");
        var ids = ml.Encode("<|start_header_id|>user<|end_header_id|>hi<|eot_id|>");
        ids.Should().Equal(128006, 882, 128007, 6151, 128009);
        ml.Decode(ids).Should().Be("<|start_header_id|>user<|end_header_id|>hi<|eot_id|>");
        ml.Decode(ids, skipSpecialTokens: true).Should().Be("userhi");
        ml.Encode("hi", addSpecialTokens: true).Should().Equal(TextTestAssets.Tokenizer("llama3").Encode("hi", addSpecialTokens: true));
    }

    [Fact]
    public void Llama2_BosAndEos_ComeFromTheOptions_AndSentencePiecesOwnSwitchesStayOff()
    {
        var sp = MLTokenizerAssets.Llama2SentencePiece();
        var ml = new MLTextTokenizer(sp, new MLTextTokenizerOptions { AddBosToken = true, AddEosToken = true });
        ml.BosToken.Should().Be("<s>");
        ml.EosToken.Should().Be("</s>");
        ml.EosTokenIds.Should().BeEquivalentTo([2]);
        var hello = TextTestAssets.Tokenizer("llama2").Encode("Hello");
        hello.Select(id => ml.IdToToken(id)).Should().Equal("▁Hello");
        ml.Encode("Hello").Should().Equal(hello);
        ml.Encode("Hello", addSpecialTokens: true).Should().Equal([1, .. hello, 2]);
        ml.AddsEosToken.Should().BeTrue();
        // <s> and </s> written in text are recognised as HF does, each text section getting its own "▁" prefix.
        ml.Encode("Hi</s>there").Should().Equal(TextTestAssets.Tokenizer("llama2").Encode("Hi</s>there"));
    }

    [Fact]
    public void ATokenizerWithoutAPublicVocabulary_NeedsOneInTheOptions()
    {
        var act = () => new MLTextTokenizer(MLTokenizerAssets.Tiktoken("llama3"));
        act.Should().Throw<ArgumentException>().WithMessage("*TiktokenTokenizer does not expose its vocabulary*MLTextTokenizerOptions.Vocabulary*");
        MLTokenizerAssets.Tiktoken("llama3").AsTextTokenizer(new MLTextTokenizerOptions
        {
            Vocabulary = MLTextTokenizer.ReadTiktokenVocabulary(MLTokenizerAssets.TiktokenFile("llama3")),
        }).Should().BeOfType<MLTextTokenizer>().Which.VocabSize.Should().Be(128000 + 256);
    }

    [Fact]
    public void ATokenizerThatAddsIdsToEveryText_IsRejected()
    {
        var bpe = BpeTokenizer.Create(new BpeOptions(new Dictionary<string, int> { ["<s>"] = 0, ["a"] = 1, ["b"] = 2, ["ab"] = 3 })
        {
            Merges = ["a b"],
            BeginningOfSentenceToken = "<s>",
        });
        var act = () => new MLTextTokenizer(bpe);
        act.Should().Throw<ArgumentException>().WithMessage("*adds 1 id(s) (0) to every text*").Which.ParamName.Should().Be("tokenizer");

        var plain = BpeTokenizer.Create(new BpeOptions(new Dictionary<string, int> { ["<s>"] = 0, ["a"] = 1, ["b"] = 2, ["ab"] = 3 }) { Merges = ["a b"] });
        var ok = new MLTextTokenizer(plain, new MLTextTokenizerOptions { BosToken = "<s>", AddBosToken = true });
        ok.Encode("ab", addSpecialTokens: true).Should().Equal(0, 3);
        ok.Encode("<s>ba").Should().Equal(0, 2, 1);
        ok.Decode([0, 3]).Should().Be("<s>ab");
        ok.Decode([0, 3], skipSpecialTokens: true).Should().Be("ab");
        var bad = () => ok.Decode([0, 9]);
        bad.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Theory]
    [InlineData("BosToken")]
    [InlineData("EosToken")]
    [InlineData("PadToken")]
    public void NamedTokens_MustBeInTheVocabulary_AndOptionsNameTheBadField(string field)
    {
        var plain = BpeTokenizer.Create(new BpeOptions(new Dictionary<string, int> { ["a"] = 0, ["b"] = 1 }) { Merges = [] });
        var options = field switch
        {
            "BosToken" => new MLTextTokenizerOptions { BosToken = "<nope>" },
            "EosToken" => new MLTextTokenizerOptions { EosToken = "<nope>" },
            _ => new MLTextTokenizerOptions { PadToken = "<nope>" },
        };
        var act = () => new MLTextTokenizer(plain, options);
        act.Should().Throw<ArgumentException>().WithMessage($"{field} '<nope>' is not in the vocabulary*");

        var empty = field switch
        {
            "BosToken" => new MLTextTokenizerOptions { BosToken = "" },
            "EosToken" => new MLTextTokenizerOptions { EosToken = "" },
            _ => new MLTextTokenizerOptions { PadToken = "" },
        };
        empty.Invoking(o => o.Validate()).Should().Throw<ArgumentException>().Which.ParamName.Should().Be(field);
    }

    [Fact]
    public void Options_Validate_NamesEveryBadField()
    {
        new MLTextTokenizerOptions().Validate();
        new MLTextTokenizerOptions { Vocabulary = new Dictionary<string, int>() }.Invoking(o => o.Validate())
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be("Vocabulary");
        new MLTextTokenizerOptions { Vocabulary = new Dictionary<string, int> { ["a"] = -1 } }.Invoking(o => o.Validate())
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be("Vocabulary");
        new MLTextTokenizerOptions { SpecialTokens = new Dictionary<string, int> { [""] = 1 } }.Invoking(o => o.Validate())
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be("SpecialTokens");
        new MLTextTokenizerOptions { AdditionalEosTokenIds = [-3] }.Invoking(o => o.Validate())
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be("AdditionalEosTokenIds");

        var plain = BpeTokenizer.Create(new BpeOptions(new Dictionary<string, int> { ["a"] = 0, ["b"] = 1 }) { Merges = [] });
        var noBos = () => new MLTextTokenizer(plain, new MLTextTokenizerOptions { AddBosToken = true });
        noBos.Should().Throw<ArgumentException>().WithMessage("*AddBosToken*no BOS*");
        var clash = () => new MLTextTokenizer(plain, new MLTextTokenizerOptions { SpecialTokens = new Dictionary<string, int> { ["a"] = 1 } });
        clash.Should().Throw<ArgumentException>().WithMessage("*'a' has id 1 but the vocabulary gives it id 0*");
        var eos = () => new MLTextTokenizer(plain, new MLTextTokenizerOptions { AdditionalEosTokenIds = [7] });
        eos.Should().Throw<ArgumentException>().WithMessage("*AdditionalEosTokenIds: id 7*");
        new MLTextTokenizer(plain, new MLTextTokenizerOptions { EosToken = "b", AdditionalEosTokenIds = [0] }).EosTokenIds.Should().BeEquivalentTo([0, 1]);
    }

    [Fact]
    public void ReadTiktokenVocabulary_UsesByteLevelStrings_AndNamesTheBadLine()
    {
        using var good = new MemoryStream(Encoding.UTF8.GetBytes("IGE= 5\naGk= 6\n\n"));
        MLTextTokenizer.ReadTiktokenVocabulary(good).Should().BeEquivalentTo(new Dictionary<string, int> { ["Ġa"] = 5, ["hi"] = 6 });

        var path = Path.Combine(Path.GetTempPath(), $"deepalign-bad-{Guid.NewGuid():N}.tiktoken");
        File.WriteAllText(path, "IGE= 5\nnot base64! 6\n");
        try
        {
            var act = () => MLTextTokenizer.ReadTiktokenVocabulary(path);
            act.Should().Throw<TokenizerFormatException>().WithMessage($"{path}: line 2 *");
        }
        finally
        {
            File.Delete(path);
        }
        using var repeated = new MemoryStream(Encoding.UTF8.GetBytes("IGE= 5\nIGE= 6\n"));
        var again = () => MLTextTokenizer.ReadTiktokenVocabulary(repeated, "x.tiktoken");
        again.Should().Throw<TokenizerFormatException>().WithMessage("x.tiktoken: line 2 repeats*");
        using var rankless = new MemoryStream(Encoding.UTF8.GetBytes("IGE=\n"));
        var noRank = () => MLTextTokenizer.ReadTiktokenVocabulary(rankless, "y");
        noRank.Should().Throw<TokenizerFormatException>().WithMessage("y: line 1 *");
    }
}
