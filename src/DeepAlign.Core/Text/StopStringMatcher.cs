namespace DeepAlign.Text;

/// <summary>
/// Watches streamed text for stop strings, also across delta boundaries. Text that could still be the start of a
/// stop string is held back; when a stop string appears, the text before it is released and <see cref="Stopped"/>
/// becomes true. Not thread-safe.
/// </summary>
public sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private readonly int _maxLength;
    private readonly System.Text.StringBuilder _pending = new();
    private readonly System.Text.StringBuilder _released = new();

    /// <summary>Creates a matcher; empty strings are rejected.</summary>
    /// <exception cref="ArgumentException">A stop string is empty or null.</exception>
    public StopStringMatcher(IEnumerable<string> stopStrings)
    {
        ArgumentNullException.ThrowIfNull(stopStrings);
        _stops = stopStrings.ToArray();
        if (_stops.Any(string.IsNullOrEmpty)) throw new ArgumentException("Stop strings must be non-empty.", nameof(stopStrings));
        _maxLength = _stops.Length == 0 ? 0 : _stops.Max(s => s.Length);
    }

    /// <summary>True once a stop string has been seen; further input is ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The stop string that matched, or null.</summary>
    public string? MatchedStopString { get; private set; }

    /// <summary>
    /// Index in the whole text fed so far at which the matched stop string starts (where to cut), or null.
    /// </summary>
    public int? StopIndex { get; private set; }

    /// <summary>All text released so far (never contains a stop string).</summary>
    public string ReleasedText => _released.ToString();

    private int _consumed; // characters of input before _pending

    /// <summary>Feeds a text delta; returns the text that is now safe to show (never part of a stop string).</summary>
    public string Push(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (Stopped || delta.Length == 0) return "";
        _pending.Append(delta);
        var text = _pending.ToString();
        // Earliest complete match (ties: the longest stop string).
        var best = -1;
        string? bestStop = null;
        foreach (var s in _stops)
        {
            var i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (best < 0 || i < best || (i == best && s.Length > bestStop!.Length))) { best = i; bestStop = s; }
        }
        if (best >= 0)
        {
            Stopped = true;
            MatchedStopString = bestStop;
            StopIndex = _consumed + best;
            return Release(text[..best], text.Length);
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        var hold = 0;
        for (var len = Math.Min(_maxLength - 1, text.Length); len > 0; len--)
        {
            var suffix = text[(text.Length - len)..];
            if (_stops.Any(s => s.StartsWith(suffix, StringComparison.Ordinal))) { hold = len; break; }
        }
        // Never split a surrogate pair.
        if (text.Length - hold > 0 && char.IsHighSurrogate(text[text.Length - hold - 1])) hold++;
        return Release(text[..(text.Length - hold)], text.Length - hold);
    }

    /// <summary>Ends the stream: releases held-back text (no stop string was completed).</summary>
    public string Flush()
    {
        if (Stopped) return "";
        var text = _pending.ToString();
        return Release(text, text.Length);
    }

    private string Release(string text, int consumed)
    {
        _released.Append(text);
        _pending.Remove(0, Math.Min(consumed, _pending.Length));
        _consumed += consumed;
        return text;
    }
}
