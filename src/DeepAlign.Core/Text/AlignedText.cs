using System.Text;

namespace DeepAlign.Text;

/// <summary>
/// A string in the middle of the tokenizer pipeline together with, for every UTF-16 char, the range of the original
/// input it came from. Characters of one code point share the code point's range; characters a stage inserts (a
/// prefix space, a Prepend) have an empty range at the place they were inserted; characters a normalizer rewrote
/// share the range of the original text they replace. Ranges are non-decreasing along the string.
/// </summary>
internal sealed class AlignedText
{
    private AlignedText(string text, int[] starts, int[] ends, int anchor)
    {
        Text = text;
        Starts = starts;
        Ends = ends;
        Anchor = anchor;
    }

    public string Text { get; }

    /// <summary>Original start of each char.</summary>
    public int[] Starts { get; }

    /// <summary>Original end (exclusive) of each char.</summary>
    public int[] Ends { get; }

    /// <summary>The original position of an empty text (where insertions into it go).</summary>
    public int Anchor { get; }

    public int Length => Text.Length;

    /// <summary><paramref name="text"/> found at <paramref name="offset"/> of the input: each code point maps to itself.</summary>
    public static AlignedText Identity(string text, int offset)
    {
        var starts = new int[text.Length];
        var ends = new int[text.Length];
        for (var i = 0; i < text.Length;)
        {
            var len = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            for (var k = 0; k < len; k++)
            {
                starts[i + k] = offset + i;
                ends[i + k] = offset + i + len;
            }
            i += len;
        }
        return new AlignedText(text, starts, ends, offset);
    }

    /// <summary>The original position an insertion before char <paramref name="index"/> maps to.</summary>
    public int PositionAt(int index) => index < Length ? Starts[index] : Length > 0 ? Ends[^1] : Anchor;

    public AlignedText Slice(int start, int length)
    {
        if (start == 0 && length == Length) return this;
        return new AlignedText(Text.Substring(start, length), Starts.AsSpan(start, length).ToArray(), Ends.AsSpan(start, length).ToArray(), PositionAt(start));
    }

    /// <summary>Builds an aligned string piece by piece.</summary>
    public sealed class Builder(int capacity, int anchor)
    {
        private readonly StringBuilder _text = new(capacity);
        private readonly List<int> _starts = new(capacity);
        private readonly List<int> _ends = new(capacity);

        /// <summary>Copies chars [start, start+length) of <paramref name="source"/> with their ranges.</summary>
        public void Copy(AlignedText source, int start, int length)
        {
            _text.Append(source.Text, start, length);
            for (var i = start; i < start + length; i++)
            {
                _starts.Add(source.Starts[i]);
                _ends.Add(source.Ends[i]);
            }
        }

        /// <summary>Appends <paramref name="text"/>, every char mapped to the original range [start, end).</summary>
        public void Mapped(string text, int start, int end)
        {
            _text.Append(text);
            for (var i = 0; i < text.Length; i++)
            {
                _starts.Add(start);
                _ends.Add(end);
            }
        }

        /// <summary>Appends one char mapped to [start, end).</summary>
        public void Mapped(char c, int start, int end)
        {
            _text.Append(c);
            _starts.Add(start);
            _ends.Add(end);
        }

        /// <summary>
        /// Appends <paramref name="replacement"/> for chars [start, start+length) of <paramref name="source"/>: char by
        /// char when the lengths are equal, else every char mapped to the whole replaced range (an empty range at the
        /// position when nothing is replaced).
        /// </summary>
        public void Replace(AlignedText source, int start, int length, string replacement)
        {
            if (replacement.Length == 0) return;
            if (length == replacement.Length)
            {
                _text.Append(replacement);
                for (var i = start; i < start + length; i++)
                {
                    _starts.Add(source.Starts[i]);
                    _ends.Add(source.Ends[i]);
                }
                return;
            }
            if (length == 0)
            {
                var p = source.PositionAt(start);
                Mapped(replacement, p, p);
                return;
            }
            var end = source.Ends[start];
            for (var i = start + 1; i < start + length; i++) end = Math.Max(end, source.Ends[i]);
            Mapped(replacement, source.Starts[start], end);
        }

        public AlignedText Build() => new(_text.ToString(), _starts.ToArray(), _ends.ToArray(), _starts.Count > 0 ? _starts[0] : anchor);
    }
}

/// <summary>One token of <see cref="HfTokenizer.EncodeWithOffsets"/>: its id, the input range it owns, and whether a text cut after it falls on a character boundary.</summary>
internal readonly record struct TokenOffset(int Id, int Start, int End, bool EndsOnCharBoundary);

/// <summary>
/// Turns the model's tokens of pre-tokenized pieces into ranges of the original input. The rule (docs/text.md,
/// "Offsets"): the pieces' chars are grouped by original range (a code point, or the text one normalizer step
/// rewrote), and a group belongs to the token that contains its last char. A token's offset runs from its first owned
/// group's start to its last owned group's end; a token that owns no group (e.g. the first byte tokens of an emoji) has
/// an empty range at the start of the group it begins. Owned ranges are disjoint and in order, so where no stage drops
/// text their slices concatenate to the input.
/// </summary>
internal static class TokenOffsetAssigner
{
    public static void Assign(List<AlignedText> pieces, TokenizerModel model, List<TokenOffset> output)
    {
        var total = 0;
        foreach (var p in pieces) total += p.Length;
        if (total == 0) return;

        // Groups over the concatenated chars: a new group starts where a char's range starts at or after the current
        // group's end (so equal or overlapping ranges share a group, and empty inserted ranges are groups of their own).
        var group = new int[total];
        var groupStart = new List<int>();
        var groupEnd = new List<int>();
        var groupLast = new List<int>();
        var a = 0;
        foreach (var p in pieces)
            for (var i = 0; i < p.Length; i++, a++)
            {
                var s = p.Starts[i];
                var e = p.Ends[i];
                if (groupStart.Count == 0 || s >= groupEnd[^1])
                {
                    groupStart.Add(s);
                    groupEnd.Add(e);
                    groupLast.Add(a);
                }
                else
                {
                    groupEnd[^1] = Math.Max(groupEnd[^1], e);
                    groupLast[^1] = a;
                }
                group[a] = groupStart.Count - 1;
            }

        var ids = new List<int>();
        var spans = new List<(int End, bool Partial)>();
        var pieceBase = 0;
        foreach (var p in pieces)
        {
            ids.Clear();
            spans.Clear();
            model.EncodeWordWithSpans(p.Text, ids, spans);
            var prev = 0;
            for (var k = 0; k < ids.Count; k++)
            {
                var (end, partial) = spans[k];
                int a0 = pieceBase + prev, a1 = pieceBase + end;
                if (a1 > a0)
                {
                    int ga = group[a0], gb = group[a1 - 1];
                    var firstOwned = groupLast[ga] < a1 ? ga : -1;
                    var lastOwned = groupLast[gb] == a1 - 1 ? gb : gb - 1;
                    var clean = !partial && groupLast[gb] == a1 - 1;
                    output.Add(firstOwned >= 0 && lastOwned >= firstOwned
                        ? new TokenOffset(ids[k], groupStart[firstOwned], groupEnd[lastOwned], clean)
                        : new TokenOffset(ids[k], groupStart[ga], groupStart[ga], clean));
                }
                else
                {
                    // A byte-fallback token that does not finish its character.
                    var at = a0 < total ? groupStart[group[a0]] : groupEnd[^1];
                    output.Add(new TokenOffset(ids[k], at, at, false));
                }
                prev = end;
            }
            pieceBase += p.Length;
        }
    }
}
