namespace DeepAlign.Text;

/// <summary>An entry of tokenizer.json "added_tokens".</summary>
internal sealed record AddedTokenInfo(int Id, string Content, bool Special, bool LStrip, bool RStrip);

/// <summary>
/// Finds added tokens in raw text before normalisation (leftmost, longest match at each position), as HF
/// tokenizers and transformers.js do. Produces alternating text sections and added-token sections.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private sealed class Node
    {
        public Dictionary<char, Node>? Children;
        public AddedTokenInfo? Token;
    }

    private readonly Node _root = new();
    public bool IsEmpty { get; }

    public AddedTokenSplitter(IEnumerable<AddedTokenInfo> tokens)
    {
        var any = false;
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            any = true;
            var node = _root;
            foreach (var ch in t.Content)
            {
                node.Children ??= new Dictionary<char, Node>();
                if (!node.Children.TryGetValue(ch, out var child)) node.Children[ch] = child = new Node();
                node = child;
            }
            node.Token = t;
        }
        IsEmpty = !any;
    }

    /// <summary>A section: either plain text (Token null) or one added token.</summary>
    public readonly record struct Section(string Text, AddedTokenInfo? Token, int Offset);

    public List<Section> Split(string text)
    {
        var sections = new List<Section>();
        var start = 0;
        var i = 0;
        while (i < text.Length)
        {
            AddedTokenInfo? match = null;
            var node = _root;
            for (var j = i; j < text.Length && node.Children is not null && node.Children.TryGetValue(text[j], out node); j++)
                if (node.Token is not null) match = node.Token;
            if (match is null) { i++; continue; }
            if (i > start) sections.Add(new Section(text.Substring(start, i - start), null, start));
            sections.Add(new Section(match.Content, match, i));
            i += match.Content.Length;
            start = i;
        }
        if (start < text.Length) sections.Add(new Section(text.Substring(start), null, start));

        // lstrip / rstrip: added tokens swallow the whitespace next to them.
        for (var k = 0; k < sections.Count; k++)
        {
            if (sections[k].Token is not { } tok) continue;
            if (tok.LStrip && k > 0 && sections[k - 1].Token is null)
                sections[k - 1] = sections[k - 1] with { Text = sections[k - 1].Text.TrimEnd() };
            if (tok.RStrip && k + 1 < sections.Count && sections[k + 1].Token is null)
            {
                var trimmed = sections[k + 1].Text.TrimStart();
                sections[k + 1] = sections[k + 1] with { Text = trimmed, Offset = sections[k + 1].Offset + sections[k + 1].Text.Length - trimmed.Length };
            }
        }
        return sections;
    }
}
