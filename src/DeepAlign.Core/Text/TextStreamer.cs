namespace DeepAlign.Text;

/// <summary>
/// Generated ids in, visible text out: a <see cref="StreamingDetokenizer"/> followed by a
/// <see cref="StopStringMatcher"/>. The generator feeds each new id to <see cref="Add"/>, shows the returned delta,
/// and stops generating when <see cref="Stopped"/> turns true (the stop string itself is never shown).
/// Not thread-safe: one instance per generation.
/// </summary>
public sealed class TextStreamer
{
    private readonly StreamingDetokenizer _detokenizer;
    private readonly StopStringMatcher _stops;

    /// <summary>Creates a streamer; special tokens are skipped by default (as chat output should be).</summary>
    public TextStreamer(ITextTokenizer tokenizer, IEnumerable<string>? stopStrings = null, bool skipSpecialTokens = true)
    {
        _detokenizer = new StreamingDetokenizer(tokenizer, skipSpecialTokens);
        _stops = new StopStringMatcher(stopStrings ?? []);
    }

    /// <summary>True once a stop string appeared in the text.</summary>
    public bool Stopped => _stops.Stopped;

    /// <summary>The stop string that matched, or null.</summary>
    public string? MatchedStopString => _stops.MatchedStopString;

    /// <summary>The visible text so far (up to, excluding, any stop string).</summary>
    public string Text => _stops.ReleasedText;

    /// <summary>The ids fed so far.</summary>
    public IReadOnlyList<int> Ids => _detokenizer.Ids;

    /// <summary>Feeds one generated id; returns the newly visible text ("" while held back or after a stop).</summary>
    public string Add(int id) => Stopped ? "" : _stops.Push(_detokenizer.Add(id));

    /// <summary>Ends the stream (e.g. at eos or the length limit); returns the remaining visible text.</summary>
    public string Finish()
    {
        if (Stopped) return "";
        var tail = _stops.Push(_detokenizer.Flush());
        return tail + _stops.Flush();
    }
}
