namespace DeepAlign.Text;

/// <summary>
/// Incremental decoding for streaming: feed generated ids one at a time and receive text deltas. Deltas never
/// end inside a UTF-8 sequence (text is held back while the decoded window ends in U+FFFD) and never lose the
/// leading space of a word (each step decodes a window that starts at an earlier token, so decoders that strip
/// a leading space — SentencePiece — strip it from context, not from the new text). After <see cref="Flush"/>,
/// the concatenation of all deltas equals <c>tokenizer.Decode(allIds, skipSpecialTokens)</c>.
/// Not thread-safe: one instance per stream.
/// </summary>
public sealed class StreamingDetokenizer
{
    private readonly ITextTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = new();
    private int _prefixOffset;
    private int _readOffset;
    private readonly System.Text.StringBuilder _emitted = new();

    /// <summary>Creates a detokenizer over <paramref name="tokenizer"/>.</summary>
    public StreamingDetokenizer(ITextTokenizer tokenizer, bool skipSpecialTokens = false)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>The ids fed so far.</summary>
    public IReadOnlyList<int> Ids => _ids;

    /// <summary>All text emitted so far.</summary>
    public string Text => _emitted.ToString();

    /// <summary>Adds one id; returns the new text it completes ("" when held back).</summary>
    public string Add(int id)
    {
        _ids.Add(id);
        var window = _ids.GetRange(_prefixOffset, _ids.Count - _prefixOffset);
        var prefixText = _readOffset > _prefixOffset ? _tokenizer.Decode(_ids.GetRange(_prefixOffset, _readOffset - _prefixOffset), _skipSpecialTokens) : "";
        var newText = _tokenizer.Decode(window, _skipSpecialTokens);
        if (newText.Length > prefixText.Length && !newText.EndsWith('\uFFFD') && newText.StartsWith(prefixText, StringComparison.Ordinal))
        {
            var delta = newText[prefixText.Length..];
            if (char.IsHighSurrogate(delta[^1])) return "";
            _prefixOffset = _readOffset;
            _readOffset = _ids.Count;
            _emitted.Append(delta);
            return delta;
        }
        return "";
    }

    /// <summary>Adds several ids; returns the text they complete.</summary>
    public string Add(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new System.Text.StringBuilder();
        foreach (var id in ids) sb.Append(Add(id));
        return sb.ToString();
    }

    /// <summary>
    /// Ends the stream: returns whatever is still held back (e.g. an incomplete UTF-8 sequence, decoded with U+FFFD
    /// as <c>Decode</c> does), so that the emitted text equals the full decode.
    /// </summary>
    public string Flush()
    {
        var full = _tokenizer.Decode(_ids, _skipSpecialTokens);
        var done = _emitted.ToString();
        if (!full.StartsWith(done, StringComparison.Ordinal))
            throw new InvalidOperationException("Streaming decode diverged from the full decode; the tokenizer's decoder is not prefix-stable.");
        var rest = full[done.Length..];
        _emitted.Append(rest);
        _prefixOffset = _readOffset = _ids.Count;
        return rest;
    }
}
