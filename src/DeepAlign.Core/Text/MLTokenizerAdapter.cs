using System.Buffers;
using Microsoft.ML.Tokenizers;

namespace DeepAlign.Text;

/// <summary>
/// An <see cref="HfTokenizer"/> seen as a <c>Microsoft.ML.Tokenizers</c> <see cref="Tokenizer"/>, so code written against that
/// contract (ML.NET text pipelines, chunkers that count tokens) runs on the exact tokenizer.json pipeline. Create it with
/// <see cref="HfTokenizer.AsMLTokenizer"/>. Ids and decoding are the <see cref="HfTokenizer"/>'s.
/// </summary>
/// <remarks>
/// <para><b>Offsets</b> (<see cref="EncodedToken.Offset"/>) are ranges of the text passed in, never of a normalized copy
/// (<see cref="EncodeResults{T}.NormalizedText"/> is always null). An added or special token owns its text; BOS/EOS added
/// by <see cref="AddSpecialTokens"/> have empty ranges at the start and end. A character encoded by several tokens (a
/// byte-level or byte-fallback split of an emoji, say) belongs to the token that completes it; the tokens before it have an
/// empty range at the character's start. Text a normalizer rewrote (NFC, for example) belongs to the token that completes the
/// rewritten run, and inserted text (the SentencePiece "▁" prefix) owns nothing. So ranges are disjoint and in order, and
/// for the Llama-2/3 and Qwen pipelines their slices concatenate to the input. <see cref="EncodedToken.Value"/> is the
/// vocabulary string (<see cref="HfTokenizer.IdToToken"/>, e.g. <c>Ġworld</c> in byte-level vocabularies).</para>
/// <para><b>Limits:</b> with <see cref="EncodeSettings.MaxTokenCount"/> (and in the index-by-token-count methods) the
/// tokens are cut only where a character ends, so fewer tokens than asked may be returned. The Hugging Face pipeline
/// always runs whole: <see cref="EncodeSettings.ConsiderNormalization"/> and <see cref="EncodeSettings.ConsiderPreTokenization"/>
/// are ignored, because skipping a tokenizer.json stage would produce ids the model was not trained with.</para>
/// <para>Immutable and thread-safe, like the tokenizer it wraps.</para>
/// </remarks>
public sealed class MLTokenizerAdapter : Tokenizer
{
    /// <summary>Wraps <paramref name="tokenizer"/>.</summary>
    /// <param name="tokenizer">The Hugging Face tokenizer.</param>
    /// <param name="addSpecialTokens">Whether every encode adds the tokenizer's BOS/EOS, as <see cref="HfTokenizer.Encode"/> with addSpecialTokens does.</param>
    public MLTokenizerAdapter(HfTokenizer tokenizer, bool addSpecialTokens = false)
    {
        HfTokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        AddSpecialTokens = addSpecialTokens;
    }

    /// <summary>The wrapped tokenizer.</summary>
    public HfTokenizer HfTokenizer { get; }

    /// <summary>Whether every encode adds the tokenizer's BOS/EOS.</summary>
    public bool AddSpecialTokens { get; }

    /// <inheritdoc />
    protected override EncodeResults<EncodedToken> EncodeToTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var s = text ?? textSpan.ToString();
        var max = CheckMax(settings);
        var offsets = HfTokenizer.EncodeWithOffsets(s, AddSpecialTokens);
        var count = CutCount(offsets, max);
        var tokens = new EncodedToken[count];
        for (var i = 0; i < count; i++)
        {
            var o = offsets[i];
            tokens[i] = new EncodedToken(o.Id, HfTokenizer.IdToToken(o.Id)!, new Range(o.Start, o.End));
        }
        return new EncodeResults<EncodedToken> { Tokens = tokens, CharsConsumed = Consumed(offsets, count, s.Length), NormalizedText = null };
    }

    /// <inheritdoc />
    protected override EncodeResults<int> EncodeToIds(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var s = text ?? textSpan.ToString();
        var max = CheckMax(settings);
        var ids = HfTokenizer.Encode(s, AddSpecialTokens);
        if (ids.Count <= max) return new EncodeResults<int> { Tokens = ids, CharsConsumed = s.Length, NormalizedText = null };
        var offsets = HfTokenizer.EncodeWithOffsets(s, AddSpecialTokens);
        var count = CutCount(offsets, max);
        var cut = new int[count];
        for (var i = 0; i < count; i++) cut[i] = offsets[i].Id;
        return new EncodeResults<int> { Tokens = cut, CharsConsumed = Consumed(offsets, count, s.Length), NormalizedText = null };
    }

    /// <inheritdoc />
    protected override int CountTokens(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings)
    {
        var s = text ?? textSpan.ToString();
        var max = CheckMax(settings);
        var n = HfTokenizer.Encode(s, AddSpecialTokens).Count;
        return n <= max ? n : CutCount(HfTokenizer.EncodeWithOffsets(s, AddSpecialTokens), max);
    }

    /// <inheritdoc />
    protected override int GetIndexByTokenCount(string? text, ReadOnlySpan<char> textSpan, EncodeSettings settings, bool fromEnd, out string? normalizedText, out int tokenCount)
    {
        var s = text ?? textSpan.ToString();
        var max = CheckMax(settings);
        normalizedText = null;
        var offsets = HfTokenizer.EncodeWithOffsets(s, AddSpecialTokens);
        var n = offsets.Count;
        if (!fromEnd)
        {
            tokenCount = CutCount(offsets, max);
            return Consumed(offsets, tokenCount, s.Length);
        }
        // The longest suffix of at most max tokens that starts on a character boundary.
        var k = Math.Min(max, n);
        while (k > 0 && k < n && !offsets[n - k - 1].EndsOnCharBoundary) k--;
        tokenCount = k;
        return k == 0 ? s.Length : k == n ? 0 : offsets[n - k].Start;
    }

    /// <inheritdoc />
    public override string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return HfTokenizer.Decode(ids);
    }

    /// <inheritdoc />
    /// <remarks>When <paramref name="destination"/> is too small, it receives the longest prefix of the decoded text that the
    /// first <paramref name="idsConsumed"/> ids produce on their own (never half a character).</remarks>
    public override OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyList<int> ?? ids.ToList();
        var full = HfTokenizer.Decode(list);
        if (full.Length <= destination.Length)
        {
            full.AsSpan().CopyTo(destination);
            idsConsumed = list.Count;
            charsWritten = full.Length;
            return OperationStatus.Done;
        }
        // The detokenizer emits text only once it is final, so each emitted prefix is a prefix of the full decode.
        var stream = new StreamingDetokenizer(HfTokenizer);
        idsConsumed = 0;
        charsWritten = 0;
        for (var i = 0; i < list.Count; i++)
        {
            if (stream.Add(list[i]).Length == 0) continue;
            if (stream.Text.Length > destination.Length) break;
            idsConsumed = i + 1;
            charsWritten = stream.Text.Length;
        }
        full.AsSpan(0, charsWritten).CopyTo(destination);
        return OperationStatus.DestinationTooSmall;
    }

    private static int CheckMax(EncodeSettings settings) =>
        settings.MaxTokenCount > 0 ? settings.MaxTokenCount
            : throw new ArgumentOutOfRangeException("maxTokenCount", settings.MaxTokenCount, "The maximum number of tokens must be greater than zero.");

    /// <summary>The largest count of at most <paramref name="max"/> leading tokens that ends on a character boundary.</summary>
    private static int CutCount(List<TokenOffset> offsets, int max)
    {
        if (max >= offsets.Count) return offsets.Count;
        var k = max;
        while (k > 0 && !offsets[k - 1].EndsOnCharBoundary) k--;
        return k;
    }

    private static int Consumed(List<TokenOffset> offsets, int count, int textLength) =>
        count == offsets.Count ? textLength : count == 0 ? 0 : offsets[count - 1].End;
}
