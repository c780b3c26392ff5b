using System.Text.Json;
using System.Text.RegularExpressions;
using DeepAlign.Text;
using FluentAssertions;
using Microsoft.ML.Tokenizers;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>
/// Our ids against Microsoft.ML.Tokenizers' own implementations built from the same npm files (tiktoken and BPE for the
/// byte-level Llama-3 and Qwen3 vocabularies, SentencePiece BPE for Llama-2), on the reference corpus plus
/// <see cref="MLTokenizerAssets.ExtraCorpus"/>.
/// </summary>
public sealed class MLTokenizersParityTests
{
    public static TheoryData<string, string> Pairs => new()
    {
        { "llama3", "tiktoken" },
        { "qwen3", "tiktoken" },
        { "qwen3", "bpe" },
        { "llama2", "sentencepiece" },
    };

    internal static Tokenizer Reference(string name, string kind) => kind switch
    {
        "tiktoken" => MLTokenizerAssets.Tiktoken(name, nfc: name == "qwen3"),
        "bpe" => MLTokenizerAssets.Bpe(name, nfc: name == "qwen3"),
        "sentencepiece" => MLTokenizerAssets.Llama2SentencePiece(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The reference as an ITextTokenizer: special tokens are split out before ML.Tokenizers sees the text, as HF does.</summary>
    internal static MLTextTokenizer Wrapped(string name, string kind) => new(Reference(name, kind), new MLTextTokenizerOptions
    {
        Vocabulary = kind == "tiktoken" ? MLTextTokenizer.ReadTiktokenVocabulary(MLTokenizerAssets.TiktokenFile(name)) : null,
        SpecialTokens = MLTokenizerAssets.AddedTokens(name, special: true),
        AddedTokens = MLTokenizerAssets.AddedTokens(name, special: false),
    });

    /// <summary>
    /// ML.Tokenizers 3.0.0's SentencePiece BPE breaks ties between equal-score merges rightmost (its SymbolPair.CompareTo
    /// prefers the larger Left in a min-heap), where SentencePiece itself (bpe_model.cc) and Hugging Face's merges take the
    /// leftmost; the two can differ only on text with a run of three or more equal characters ("???", ",,,").
    /// </summary>
    internal static bool MayHitSentencePieceTie(string kind, string text) => kind == "sentencepiece" && Regex.IsMatch(text, @"(.)\1\1");

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Ids_EqualMLTokenizers_OnTheCorpus(string name, string kind)
    {
        var ours = TextTestAssets.Tokenizer(name);
        var reference = Wrapped(name, kind);
        var corpus = MLTokenizerAssets.Corpus;
        var failures = new List<string>();
        var ties = 0;
        foreach (var text in corpus)
        {
            var expected = reference.Encode(text);
            var actual = ours.Encode(text);
            if (actual.SequenceEqual(expected)) continue;
            if (MayHitSentencePieceTie(kind, text) && ours.Decode(actual) == ours.Decode(expected)) { ties++; continue; }
            failures.Add($"{JsonSerializer.Serialize(text)}: ML.Tokenizers [{string.Join(",", expected)}], ours [{string.Join(",", actual)}]");
        }
        failures.Should().BeEmpty();
        ties.Should().BeLessThanOrEqualTo(10, "only strings with a run of three equal characters may tie");
        corpus.Length.Should().BeGreaterThan(290);
    }

    [Fact]
    public void Llama2_EqualScoreTie_IsBrokenLeftmost_AsSentencePieceDoes_WhileMLTokenizersGoesRightmost()
    {
        // "▁!???" : "??" can merge at two places with the same score. SentencePiece and HF merge the leftmost pair.
        var ours = TextTestAssets.Tokenizer("llama2");
        ours.Encode("!???").Select(id => ours.IdToToken(id)).Should().Equal("▁!", "??", "?");
        var ml = MLTokenizerAssets.Llama2SentencePiece();
        ml.EncodeToIds("!???", false, false).Select(id => ours.IdToToken(id)).Should().Equal("▁!", "?", "??");
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void AdapterIds_EqualMLTokenizersDirectly_OnTextWithoutSpecialTokens(string name, string kind)
    {
        // Straight through ML.Tokenizers' public Tokenizer API on both sides: our adapter vs their tokenizer.
        var ours = TextTestAssets.Tokenizer(name).AsMLTokenizer();
        var reference = Reference(name, kind);
        var special = MLTokenizerAssets.AddedTokens(name).Keys.ToArray();
        var failures = new List<string>();
        var compared = 0;
        foreach (var text in MLTokenizerAssets.Corpus.Where(t => !special.Any(s => t.Contains(s, StringComparison.Ordinal))))
        {
            if (MayHitSentencePieceTie(kind, text)) continue;
            compared++;
            var expected = reference is SentencePieceTokenizer sp ? sp.EncodeToIds(text, false, false) : reference.EncodeToIds(text);
            if (!ours.EncodeToIds(text).SequenceEqual(expected)) failures.Add(JsonSerializer.Serialize(text));
            ours.CountTokens(text).Should().Be(expected.Count, JsonSerializer.Serialize(text));
        }
        failures.Should().BeEmpty();
        compared.Should().BeGreaterThan(200);
    }

    [Fact]
    public void Llama3_MLBpeTokenizer_DiffersOnlyWhereIgnoreMergesMatters()
    {
        // ML.Tokenizers' BpeTokenizer has no ignore_merges (Llama-3 sets it): a word that is itself a vocabulary entry is one
        // token for HF but may be merged differently by plain BPE. Every difference must be of that kind.
        var ours = TextTestAssets.Tokenizer("llama3");
        var bpe = MLTokenizerAssets.Bpe("llama3");
        var differing = 0;
        foreach (var text in MLTokenizerAssets.Corpus)
        {
            var expected = bpe.EncodeToIds(text);
            var actual = ours.Encode(text);
            if (actual.SequenceEqual(expected)) continue;
            differing++;
            // Decoding both gives the same text, and each differing token of ours is a whole vocabulary word.
            ours.Decode(actual).Should().Be(ours.Decode(expected), JsonSerializer.Serialize(text));
            actual.Count.Should().BeLessThan(expected.Count, $"ignore_merges only joins: {JsonSerializer.Serialize(text)}");
        }
        differing.Should().BeLessThan(MLTokenizerAssets.Corpus.Length / 10);
    }
}
