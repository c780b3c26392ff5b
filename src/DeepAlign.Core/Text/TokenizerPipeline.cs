using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepAlign.Text;

// The stages of a Hugging Face tokenizer.json pipeline: normalizer -> pre-tokenizer -> model -> decoder.
// Each stage is built from its JSON object; an unknown "type" throws NotSupportedException naming it.

/// <summary>A normalizer stage (tokenizer.json "normalizer").</summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text);

    /// <summary>The same normalization with each output char mapped to the input it came from (for offsets); the text equals <see cref="Normalize"/>'s.</summary>
    public abstract AlignedText NormalizeAligned(AlignedText text);

    public static TextNormalizer? FromJson(JsonElement? element, string file)
    {
        if (element is not { ValueKind: JsonValueKind.Object } e) return null;
        var type = JsonHelpers.RequiredString(e, "type", file, "normalizer");
        return type switch
        {
            "NFC" => new UnicodeFormNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeFormNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeFormNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeFormNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Prepend" => new PrependNormalizer(JsonHelpers.RequiredString(e, "prepend", file, "normalizer.Prepend")),
            "Replace" => new ReplaceNormalizer(PatternSpec.FromJson(e, file, "normalizer.Replace"),
                JsonHelpers.RequiredString(e, "content", file, "normalizer.Replace")),
            "Sequence" => new SequenceNormalizer(JsonHelpers.RequiredArray(e, "normalizers", file, "normalizer.Sequence")
                .Select(x => FromJson(x, file) ?? throw new TokenizerFormatException($"{file}: null entry in normalizer.Sequence")).ToArray()),
            _ => throw new NotSupportedException($"{file}: normalizer type '{type}' is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Sequence)."),
        };
    }
}

internal sealed class UnicodeFormNormalizer(NormalizationForm form) : TextNormalizer
{
    public override string Normalize(string text) => text.IsNormalized(form) ? text : text.Normalize(form);

    /// <summary>
    /// Normalizes chunk by chunk, a chunk starting at each code point that is not a combining mark or a Hangul
    /// medial/final jamo; neighbouring chunks whose normalization interacts are joined. A chunk the normalization
    /// leaves unchanged keeps char-by-char ranges; a rewritten chunk maps every output char to the whole chunk. If the
    /// chunks do not reproduce the whole-text normalization, the whole text is one chunk.
    /// </summary>
    public override AlignedText NormalizeAligned(AlignedText text)
    {
        var s = text.Text;
        if (s.IsNormalized(form)) return text;
        var full = s.Normalize(form);
        var bounds = new List<int> { 0 };
        for (var i = 0; i < s.Length;)
        {
            var len = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            if (i > 0 && IsStarter(s, i)) bounds.Add(i);
            i += len;
        }
        bounds.Add(s.Length);
        var chunks = new List<(int Start, int End)>();
        var accStart = 0;
        for (var k = 1; k < bounds.Count - 1; k++)
        {
            string acc = s[accStart..bounds[k]], next = s[bounds[k]..bounds[k + 1]];
            if (string.Equals((acc + next).Normalize(form), acc.Normalize(form) + next.Normalize(form), StringComparison.Ordinal))
            {
                chunks.Add((accStart, bounds[k]));
                accStart = bounds[k];
            }
        }
        chunks.Add((accStart, s.Length));
        var b = new AlignedText.Builder(full.Length, text.Anchor);
        foreach (var (start, end) in chunks)
        {
            var piece = s[start..end];
            var normalized = piece.Normalize(form);
            if (string.Equals(piece, normalized, StringComparison.Ordinal)) b.Copy(text, start, end - start);
            else b.Mapped(normalized, text.Starts[start], text.Ends.AsSpan(start, end - start).ToArray().Max());
        }
        var result = b.Build();
        if (string.Equals(result.Text, full, StringComparison.Ordinal)) return result;
        var coarse = new AlignedText.Builder(full.Length, text.Anchor);
        coarse.Mapped(full, text.Starts[0], text.Ends.Max());
        return coarse.Build();
    }

    private static bool IsStarter(string s, int i)
    {
        var c = s[i];
        if (c is >= '\u1160' and <= '\u11FF' or >= '\uD7B0' and <= '\uD7FF') return false;
        var category = CharUnicodeInfo.GetUnicodeCategory(s, i);
        return category is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark);
    }
}

internal sealed class LowercaseNormalizer : TextNormalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();

    public override AlignedText NormalizeAligned(AlignedText text)
    {
        var lower = text.Text.ToLowerInvariant();
        var b = new AlignedText.Builder(lower.Length, text.Anchor);
        if (lower.Length == text.Length)
            for (var i = 0; i < lower.Length; i++) b.Mapped(lower[i], text.Starts[i], text.Ends[i]);
        else if (text.Length > 0) b.Mapped(lower, text.Starts[0], text.Ends.Max());
        return b.Build();
    }
}

internal sealed class PrependNormalizer(string prepend) : TextNormalizer
{
    // HF tokenizers prepend only to non-empty text.
    public override string Normalize(string text) => text.Length == 0 ? text : prepend + text;

    public override AlignedText NormalizeAligned(AlignedText text)
    {
        if (text.Length == 0) return text;
        var b = new AlignedText.Builder(prepend.Length + text.Length, text.Anchor);
        b.Mapped(prepend, text.Starts[0], text.Starts[0]);
        b.Copy(text, 0, text.Length);
        return b.Build();
    }
}

internal sealed class ReplaceNormalizer(PatternSpec pattern, string content) : TextNormalizer
{
    public override string Normalize(string text) => pattern.ReplaceAll(text, content);

    public override AlignedText NormalizeAligned(AlignedText text) => pattern.ReplaceAllAligned(text, content);
}

internal sealed class SequenceNormalizer(TextNormalizer[] stages) : TextNormalizer
{
    public override string Normalize(string text)
    {
        foreach (var s in stages) text = s.Normalize(text);
        return text;
    }

    public override AlignedText NormalizeAligned(AlignedText text)
    {
        foreach (var s in stages) text = s.NormalizeAligned(text);
        return text;
    }
}

/// <summary>A "pattern" object: {"String": "..."} (literal) or {"Regex": "..."}.</summary>
internal sealed class PatternSpec
{
    private readonly string? _literal;
    private readonly Regex? _regex;

    private PatternSpec(string? literal, Regex? regex) { _literal = literal; _regex = regex; }

    public Regex AsRegex() => _regex ?? new Regex(Regex.Escape(_literal!), RegexOptions.CultureInvariant, TokenizerLoadScope.Current.RegexMatchTimeout);

    public string ReplaceAll(string text, string content) =>
        _literal is not null ? (_literal.Length == 0 ? text : text.Replace(_literal, content, StringComparison.Ordinal)) : _regex!.Replace(text, content.Replace("$", "$$"));

    /// <summary><see cref="ReplaceAll"/> with alignment: each replacement maps to the text it replaced (char by char when the lengths agree).</summary>
    public AlignedText ReplaceAllAligned(AlignedText text, string content)
    {
        var s = text.Text;
        if (_literal is { Length: 0 }) return text;
        var b = new AlignedText.Builder(s.Length, text.Anchor);
        var prev = 0;
        if (_literal is not null)
        {
            for (var i = s.IndexOf(_literal, StringComparison.Ordinal); i >= 0; i = s.IndexOf(_literal, i + _literal.Length, StringComparison.Ordinal))
            {
                b.Copy(text, prev, i - prev);
                b.Replace(text, i, _literal.Length, content);
                prev = i + _literal.Length;
            }
        }
        else
        {
            for (var m = _regex!.Match(s); m.Success; m = m.NextMatch())
            {
                b.Copy(text, prev, m.Index - prev);
                b.Replace(text, m.Index, m.Length, content);
                prev = m.Index + m.Length;
            }
        }
        b.Copy(text, prev, s.Length - prev);
        return b.Build();
    }

    public static PatternSpec FromJson(JsonElement owner, string file, string where)
    {
        if (!owner.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{file}: {where} has no 'pattern' object.");
        if (p.TryGetProperty("String", out var s))
            return s.ValueKind == JsonValueKind.String ? new PatternSpec(s.GetString()!, null)
                : throw new TokenizerFormatException($"{file}: {where}.pattern.String must be a string, found {s.ValueKind}.");
        if (p.TryGetProperty("Regex", out var r))
            return r.ValueKind == JsonValueKind.String ? new PatternSpec(null, RegexTranslator.Compile(r.GetString()!, file, where))
                : throw new TokenizerFormatException($"{file}: {where}.pattern.Regex must be a string, found {r.ValueKind}.");
        throw new TokenizerFormatException($"{file}: {where}.pattern must have 'String' or 'Regex'.");
    }
}

/// <summary>Translates the (Oniguruma-flavoured) regexes found in tokenizer.json files to .NET.</summary>
internal static class RegexTranslator
{
    public static Regex Compile(string pattern, string file, string where)
    {
        // Case-insensitive contractions: spell the ASCII case pairs out, as transformers.js does, so that
        // non-ASCII case equivalents (e.g. U+017F, U+212A) never match.
        var translated = pattern.Replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)",
            "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))", StringComparison.Ordinal);
        try
        {
            // A match timeout bounds catastrophic backtracking (e.g. "(a+)+$") in files from strangers.
            return new Regex(translated, RegexOptions.Compiled | RegexOptions.CultureInvariant, TokenizerLoadScope.Current.RegexMatchTimeout);
        }
        catch (ArgumentException ex)
        {
            throw new TokenizerFormatException($"{file}: {where} regex '{JsonHelpers.Abbreviate(pattern)}' cannot be compiled: {ex.Message}", ex);
        }
    }
}

/// <summary>A pre-tokenizer stage: splits a piece of text into smaller pieces (words).</summary>
internal abstract class PreTokenizer
{
    /// <summary>Splits <paramref name="pieces"/> in place; <paramref name="atTextStart"/> is true when the section starts the input.</summary>
    public abstract void PreTokenize(List<string> pieces, bool atTextStart);

    /// <summary>The same split with alignment (for offsets); the pieces' texts equal <see cref="PreTokenize"/>'s.</summary>
    public abstract void PreTokenizeAligned(List<AlignedText> pieces, bool atTextStart);

    public static PreTokenizer? FromJson(JsonElement? element, string file)
    {
        if (element is not { ValueKind: JsonValueKind.Object } e) return null;
        var type = JsonHelpers.RequiredString(e, "type", file, "pre_tokenizer");
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(JsonHelpers.RequiredArray(e, "pretokenizers", file, "pre_tokenizer.Sequence")
                    .Select(x => FromJson(x, file) ?? throw new TokenizerFormatException($"{file}: null entry in pre_tokenizer.Sequence")).ToArray());
            case "Split":
            {
                var behavior = JsonHelpers.OptionalString(e, "behavior") ?? "Isolated";
                var invert = JsonHelpers.OptionalBool(e, "invert") ?? false;
                if (invert || (behavior != "Isolated" && behavior != "Removed"))
                    throw new NotSupportedException($"{file}: pre_tokenizer Split with behavior '{behavior}' and invert={invert} is not supported (supported: Isolated, Removed; invert=false).");
                return new SplitPreTokenizer(PatternSpec.FromJson(e, file, "pre_tokenizer.Split").AsRegex(), behavior == "Removed");
            }
            case "ByteLevel":
                return new ByteLevelPreTokenizer(JsonHelpers.OptionalBool(e, "add_prefix_space") ?? true, JsonHelpers.OptionalBool(e, "use_regex") ?? true);
            case "Whitespace":
                return new RegexMatchPreTokenizer(new Regex(@"\w+|[^\w\s]+", RegexOptions.Compiled | RegexOptions.CultureInvariant));
            case "WhitespaceSplit":
                return new RegexMatchPreTokenizer(new Regex(@"\S+", RegexOptions.Compiled | RegexOptions.CultureInvariant));
            case "Metaspace":
            {
                var replacement = JsonHelpers.OptionalString(e, "replacement") ?? "\u2581";
                var scheme = JsonHelpers.OptionalString(e, "prepend_scheme")
                    ?? ((JsonHelpers.OptionalBool(e, "add_prefix_space") ?? true) ? "always" : "never");
                var split = JsonHelpers.OptionalBool(e, "split") ?? true;
                if (scheme is not ("always" or "first" or "never"))
                    throw new TokenizerFormatException($"{file}: pre_tokenizer.Metaspace prepend_scheme '{scheme}' is not supported (always, first, never).");
                if (replacement.Length == 0)
                    throw new TokenizerFormatException($"{file}: pre_tokenizer.Metaspace replacement must not be empty.");
                return new MetaspacePreTokenizer(replacement, scheme, split);
            }
            default:
                throw new NotSupportedException($"{file}: pre_tokenizer type '{type}' is not supported (supported: Sequence, Split, ByteLevel, Whitespace, WhitespaceSplit, Metaspace).");
        }
    }
}

internal sealed class SequencePreTokenizer(PreTokenizer[] stages) : PreTokenizer
{
    public override void PreTokenize(List<string> pieces, bool atTextStart)
    {
        foreach (var s in stages) s.PreTokenize(pieces, atTextStart);
    }

    public override void PreTokenizeAligned(List<AlignedText> pieces, bool atTextStart)
    {
        foreach (var s in stages) s.PreTokenizeAligned(pieces, atTextStart);
    }
}

/// <summary>Split with behaviour Isolated (matches and the text between them are all pieces) or Removed.</summary>
internal sealed class SplitPreTokenizer(Regex regex, bool removeMatches) : PreTokenizer
{
    public override void PreTokenize(List<string> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        foreach (var text in input)
        {
            var prev = 0;
            for (var m = regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Index > prev) pieces.Add(text.Substring(prev, m.Index - prev));
                if (m.Length > 0 && !removeMatches) pieces.Add(m.Value);
                prev = m.Index + m.Length;
            }
            if (prev < text.Length) pieces.Add(text.Substring(prev));
        }
    }

    public override void PreTokenizeAligned(List<AlignedText> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        foreach (var piece in input)
        {
            var text = piece.Text;
            var prev = 0;
            for (var m = regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Index > prev) pieces.Add(piece.Slice(prev, m.Index - prev));
                if (m.Length > 0 && !removeMatches) pieces.Add(piece.Slice(m.Index, m.Length));
                prev = m.Index + m.Length;
            }
            if (prev < text.Length) pieces.Add(piece.Slice(prev, text.Length - prev));
        }
    }
}

/// <summary>Keeps only the regex matches (Whitespace: \w+|[^\w\s]+, WhitespaceSplit: \S+).</summary>
internal sealed class RegexMatchPreTokenizer(Regex regex) : PreTokenizer
{
    public override void PreTokenize(List<string> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        foreach (var text in input)
            for (var m = regex.Match(text); m.Success; m = m.NextMatch())
                pieces.Add(m.Value);
    }

    public override void PreTokenizeAligned(List<AlignedText> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        foreach (var piece in input)
            for (var m = regex.Match(piece.Text); m.Success; m = m.NextMatch())
                pieces.Add(piece.Slice(m.Index, m.Length));
    }
}

/// <summary>ByteLevel: optional prefix space, optional GPT-2 regex split, then bytes mapped to printable characters.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    private static readonly Regex Gpt2 = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    public override void PreTokenize(List<string> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        for (var i = 0; i < input.Length; i++)
        {
            var text = input[i];
            if (addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
            if (useRegex)
                for (var m = Gpt2.Match(text); m.Success; m = m.NextMatch()) pieces.Add(ByteLevelAlphabet.Encode(m.Value));
            else
                pieces.Add(ByteLevelAlphabet.Encode(text));
        }
    }

    public override void PreTokenizeAligned(List<AlignedText> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        foreach (var original in input)
        {
            var piece = original;
            if (addPrefixSpace && !piece.Text.StartsWith(' '))
            {
                var b = new AlignedText.Builder(piece.Length + 1, piece.Anchor);
                b.Mapped(' ', piece.PositionAt(0), piece.PositionAt(0));
                b.Copy(piece, 0, piece.Length);
                piece = b.Build();
            }
            if (useRegex)
                for (var m = Gpt2.Match(piece.Text); m.Success; m = m.NextMatch()) pieces.Add(ByteLevelAlphabet.EncodeAligned(piece.Slice(m.Index, m.Length)));
            else
                pieces.Add(ByteLevelAlphabet.EncodeAligned(piece));
        }
    }
}

/// <summary>Metaspace: spaces become the replacement character, optionally prepended, optionally split before it.</summary>
internal sealed class MetaspacePreTokenizer(string replacement, string prependScheme, bool split) : PreTokenizer
{
    public override void PreTokenize(List<string> pieces, bool atTextStart)
    {
        if (prependScheme is not ("always" or "first" or "never"))
            throw new NotSupportedException($"Metaspace prepend_scheme '{prependScheme}' is not supported.");
        var input = pieces.ToArray();
        pieces.Clear();
        for (var i = 0; i < input.Length; i++)
        {
            var text = input[i].Replace(" ", replacement, StringComparison.Ordinal);
            var prepend = prependScheme == "always" || (prependScheme == "first" && atTextStart && i == 0);
            if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
            if (!split) { pieces.Add(text); continue; }
            var start = 0;
            for (var j = 1; j <= text.Length; j++)
            {
                if (j == text.Length || string.CompareOrdinal(text, j, replacement, 0, replacement.Length) == 0)
                {
                    if (j > start) pieces.Add(text.Substring(start, j - start));
                    start = j;
                }
            }
        }
    }

    public override void PreTokenizeAligned(List<AlignedText> pieces, bool atTextStart)
    {
        var input = pieces.ToArray();
        pieces.Clear();
        for (var i = 0; i < input.Length; i++)
        {
            var source = input[i];
            var prepend = prependScheme == "always" || (prependScheme == "first" && atTextStart && i == 0);
            var b = new AlignedText.Builder(source.Length + replacement.Length, source.Anchor);
            for (var k = 0; k < source.Length; k++)
            {
                if (source.Text[k] == ' ') b.Replace(source, k, 1, replacement);
                else b.Copy(source, k, 1);
            }
            var text = b.Build();
            if (prepend && !text.Text.StartsWith(replacement, StringComparison.Ordinal))
            {
                var withPrefix = new AlignedText.Builder(text.Length + replacement.Length, text.Anchor);
                withPrefix.Mapped(replacement, text.PositionAt(0), text.PositionAt(0));
                withPrefix.Copy(text, 0, text.Length);
                text = withPrefix.Build();
            }
            if (!split) { pieces.Add(text); continue; }
            var start = 0;
            for (var j = 1; j <= text.Length; j++)
            {
                if (j == text.Length || string.CompareOrdinal(text.Text, j, replacement, 0, replacement.Length) == 0)
                {
                    if (j > start) pieces.Add(text.Slice(start, j - start));
                    start = j;
                }
            }
        }
    }
}

/// <summary>A decoder stage (tokenizer.json "decoder"), applied to the list of token strings.</summary>
internal abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken);

    public static TokenDecoder? FromJson(JsonElement? element, string file)
    {
        if (element is not { ValueKind: JsonValueKind.Object } e) return null;
        var type = JsonHelpers.RequiredString(e, "type", file, "decoder");
        return type switch
        {
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => new ReplaceDecoder(PatternSpec.FromJson(e, file, "decoder.Replace"), JsonHelpers.RequiredString(e, "content", file, "decoder.Replace")),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => JsonHelpers.RequiredString(e, "content", file, "decoder.Strip").Length != 1
                ? throw new TokenizerFormatException($"{file}: decoder.Strip content must be one character.")
                : new StripDecoder(JsonHelpers.RequiredString(e, "content", file, "decoder.Strip"),
                JsonHelpers.RequiredInt(e, "start", file, "decoder.Strip"), JsonHelpers.RequiredInt(e, "stop", file, "decoder.Strip")),
            "Metaspace" => JsonHelpers.OptionalString(e, "replacement") is "" ? throw new TokenizerFormatException($"{file}: decoder.Metaspace replacement must not be empty.")
                : new MetaspaceDecoder(JsonHelpers.OptionalString(e, "replacement") ?? "\u2581",
                (JsonHelpers.OptionalString(e, "prepend_scheme") ?? ((JsonHelpers.OptionalBool(e, "add_prefix_space") ?? true) ? "always" : "never")) != "never"),
            "Sequence" => new SequenceDecoder(JsonHelpers.RequiredArray(e, "decoders", file, "decoder.Sequence")
                .Select(x => FromJson(x, file) ?? throw new TokenizerFormatException($"{file}: null entry in decoder.Sequence")).ToArray()),
            _ => throw new NotSupportedException($"{file}: decoder type '{type}' is not supported (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)."),
        };
    }
}

internal sealed class ByteLevelDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        // Added tokens are emitted verbatim; runs of byte-level tokens are mapped back to bytes and decoded as UTF-8.
        var result = new List<string>();
        var bytes = new List<byte>();
        void Flush()
        {
            if (bytes.Count == 0) return;
            result.Add(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
        foreach (var t in tokens)
        {
            if (isAddedToken(t)) { Flush(); result.Add(t); continue; }
            foreach (var ch in t)
            {
                if (ByteLevelAlphabet.CharToByte.TryGetValue(ch, out var b)) bytes.Add(b);
                else { Flush(); result.Add(ch.ToString()); }
            }
        }
        Flush();
        return result;
    }
}

internal sealed class ReplaceDecoder(PatternSpec pattern, string content) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken) =>
        tokens.Select(t => pattern.ReplaceAll(t, content)).ToList();
}

internal sealed class ByteFallbackDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        var result = new List<string>();
        var bytes = new List<byte>();
        foreach (var t in tokens)
        {
            if (TryParseByteToken(t, out var b)) { bytes.Add(b); continue; }
            if (bytes.Count > 0) { result.Add(Encoding.UTF8.GetString(bytes.ToArray())); bytes.Clear(); }
            result.Add(t);
        }
        if (bytes.Count > 0) result.Add(Encoding.UTF8.GetString(bytes.ToArray()));
        return result;
    }

    public static bool TryParseByteToken(string t, out byte b)
    {
        b = 0;
        return t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
            && byte.TryParse(t.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out b);
    }
}

internal sealed class FuseDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken) => [string.Concat(tokens)];
}

internal sealed class StripDecoder(string content, int start, int stop) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        if (content.Length != 1) throw new NotSupportedException($"decoder Strip with content '{content}' (not one character) is not supported.");
        var c = content[0];
        return tokens.Select(t =>
        {
            var s = 0;
            while (s < start && s < t.Length && t[s] == c) s++;
            var e = t.Length;
            for (var i = 0; i < stop && e > s && t[e - 1] == c; i++) e--;
            return t.Substring(s, e - s);
        }).ToList();
    }
}

internal sealed class MetaspaceDecoder(string replacement, bool stripFirstSpace) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        var result = new List<string>(tokens.Count);
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i].Replace(replacement, " ", StringComparison.Ordinal);
            if (stripFirstSpace && i == 0 && t.StartsWith(' ')) t = t.Substring(1);
            result.Add(t);
        }
        return result;
    }
}

internal sealed class SequenceDecoder(TokenDecoder[] stages) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens, Func<string, bool> isAddedToken)
    {
        foreach (var s in stages) tokens = s.DecodeChain(tokens, isAddedToken);
        return tokens;
    }
}

internal static class JsonHelpers
{
    private static bool TryGet(JsonElement e, string name, out JsonElement v)
    {
        if (e.ValueKind == JsonValueKind.Object) return e.TryGetProperty(name, out v);
        v = default;
        return false;
    }

    public static string RequiredString(JsonElement e, string name, string file, string where) =>
        TryGet(e, name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new TokenizerFormatException($"{file}: {where} is missing the string property '{name}'.");

    public static string? OptionalString(JsonElement e, string name) =>
        TryGet(e, name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static bool? OptionalBool(JsonElement e, string name) =>
        TryGet(e, name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False) ? v.GetBoolean() : null;

    public static JsonElement? OptionalObject(JsonElement e, string name) =>
        TryGet(e, name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    public static JsonElement.ArrayEnumerator RequiredArray(JsonElement e, string name, string file, string where) =>
        TryGet(e, name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray()
            : throw new TokenizerFormatException($"{file}: {where} is missing the array property '{name}'.");

    public static int RequiredInt(JsonElement e, string name, string file, string where, int min = 0)
    {
        if (!TryGet(e, name, out var v)) throw new TokenizerFormatException($"{file}: {where} is missing the integer property '{name}'.");
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n >= min
            ? n
            : throw new TokenizerFormatException($"{file}: {where}.{name} must be an integer >= {min}, found {Abbreviate(v.GetRawText())}.");
    }

    public static int RequiredTokenId(JsonElement e, string name, string file, string where) =>
        TryGet(e, name, out var v) ? TokenId(v, file, $"{where}.{name}") : throw new TokenizerFormatException($"{file}: {where} is missing the token id '{name}'.");

    /// <summary>A token id: an integer in [0, <see cref="TokenizerLimits.MaxVocabularySize"/>).</summary>
    public static int TokenId(JsonElement v, string file, string where)
    {
        var max = TokenizerLoadScope.Current.MaxVocabularySize;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var id) && id >= 0 && id < max
            ? id
            : throw new TokenizerFormatException($"{file}: {where} must be a token id in [0, {max}), found {Abbreviate(v.GetRawText())}.");
    }

    public static List<string> StringArray(JsonElement v, string file, string where)
    {
        if (v.ValueKind != JsonValueKind.Array) throw new TokenizerFormatException($"{file}: {where} must be an array of strings, found {v.ValueKind}.");
        var list = new List<string>();
        var k = 0;
        foreach (var x in v.EnumerateArray())
        {
            list.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : throw new TokenizerFormatException($"{file}: {where}[{k}] must be a string, found {x.ValueKind}."));
            k++;
        }
        return list;
    }

    public static string Abbreviate(string s) => s.Length <= 60 ? s : s[..60] + "...";
}
