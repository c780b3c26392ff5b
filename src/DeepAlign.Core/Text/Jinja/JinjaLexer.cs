using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace DeepAlign.Text.Jinja;

internal enum TokKind { Text, VarStart, VarEnd, BlockStart, BlockEnd, Name, String, Integer, Float, Op, End }

internal readonly record struct Tok(TokKind Kind, string Value, int Line);

/// <summary>
/// Tokenises a chat template with the settings transformers uses (trim_blocks, lstrip_blocks, a single trailing
/// newline dropped) and the whitespace-control markers <c>{%- -%} {{- -}} {#- -#}</c>.
/// </summary>
internal static class JinjaLexer
{
    private static readonly Regex LStripBlocks = new(@"^[ \t]*(\{[#%-])", RegexOptions.Multiline | RegexOptions.CultureInvariant);
    private static readonly Regex TrimBlocks = new(@"([#%-]\})\n", RegexOptions.CultureInvariant);
    private static readonly Regex GenerationTag = new(@"(\s*)\{%(-?)\s*(?:end)?generation\s*(-?)%\}(\s*)", RegexOptions.Singleline | RegexOptions.CultureInvariant);

    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static string Preprocess(string template)
    {
        if (template.EndsWith('\n')) template = template[..^1];
        template = LStripBlocks.Replace(template, "$1");
        template = TrimBlocks.Replace(template, "$1");
        // The transformers-specific {% generation %} tags only mark assistant spans; they render nothing.
        return GenerationTag.Replace(template, m => (m.Groups[2].Value.Length > 0 ? "" : m.Groups[1].Value) + (m.Groups[3].Value.Length > 0 ? "" : m.Groups[4].Value));
    }

    public static List<Tok> Tokenize(string source)
    {
        var src = Preprocess(source);
        var toks = new List<Tok>();
        var i = 0;
        var line = 1;
        var n = src.Length;

        void StripTrailingText()
        {
            if (toks.Count > 0 && toks[^1].Kind == TokKind.Text)
            {
                var t = toks[^1].Value.TrimEnd();
                if (t.Length == 0) toks.RemoveAt(toks.Count - 1);
                else toks[^1] = toks[^1] with { Value = t };
            }
        }
        void SkipWhitespace()
        {
            while (i < n && char.IsWhiteSpace(src[i])) { if (src[i] == '\n') line++; i++; }
        }

        while (i < n)
        {
            // Text up to the next tag.
            var start = i;
            while (i < n && !(src[i] == '{' && i + 1 < n && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#'))) i++;
            if (i > start)
            {
                var text = src[start..i];
                toks.Add(new Tok(TokKind.Text, text, line));
                line += text.Count(c => c == '\n');
            }
            if (i >= n) break;

            if (src[i + 1] == '#')
            {
                var close = src.IndexOf("#}", i + 2, StringComparison.Ordinal);
                if (close < 0) throw new JinjaException($"line {line}: comment '{{#' is never closed.");
                var stripBefore = i + 2 < n && src[i + 2] == '-';
                var stripAfter = close > i + 2 && src[close - 1] == '-';
                if (stripBefore) StripTrailingText();
                line += src.AsSpan(i, close + 2 - i).Count('\n');
                i = close + 2;
                if (stripAfter) SkipWhitespace();
                continue;
            }

            var isBlock = src[i + 1] == '%';
            i += 2;
            if (i < n && src[i] == '-') { StripTrailingText(); i++; }
            toks.Add(new Tok(isBlock ? TokKind.BlockStart : TokKind.VarStart, isBlock ? "{%" : "{{", line));
            var closer = isBlock ? "%}" : "}}";
            var braceDepth = 0;
            while (true)
            {
                SkipWhitespace();
                if (i >= n) throw new JinjaException($"line {line}: '{(isBlock ? "{%" : "{{")}' is never closed.");
                if (src[i] == '-' && i + 2 < n && string.CompareOrdinal(src, i + 1, closer, 0, 2) == 0 && braceDepth == 0)
                {
                    toks.Add(new Tok(isBlock ? TokKind.BlockEnd : TokKind.VarEnd, closer, line));
                    i += 3;
                    SkipWhitespace();
                    break;
                }
                if (string.CompareOrdinal(src, i, closer, 0, 2) == 0 && braceDepth == 0)
                {
                    toks.Add(new Tok(isBlock ? TokKind.BlockEnd : TokKind.VarEnd, closer, line));
                    i += 2;
                    break;
                }
                var c = src[i];
                if (c == '\'' || c == '"')
                {
                    i++;
                    var sb = new StringBuilder();
                    while (true)
                    {
                        if (i >= n) throw new JinjaException($"line {line}: string literal is never closed.");
                        var ch = src[i];
                        if (ch == c) { i++; break; }
                        if (ch == '\\')
                        {
                            if (i + 1 >= n) throw new JinjaException($"line {line}: string literal ends with a backslash.");
                            var e = src[i + 1];
                            i += 2;
                            switch (e)
                            {
                                case 'n': sb.Append('\n'); break;
                                case 't': sb.Append('\t'); break;
                                case 'r': sb.Append('\r'); break;
                                case 'b': sb.Append('\b'); break;
                                case 'f': sb.Append('\f'); break;
                                case 'v': sb.Append('\v'); break;
                                case '0': sb.Append('\0'); break;
                                case '\\': sb.Append('\\'); break;
                                case '\'': sb.Append('\''); break;
                                case '"': sb.Append('"'); break;
                                case 'x':
                                case 'u':
                                {
                                    var len = e == 'x' ? 2 : 4;
                                    if (i + len > n || !int.TryParse(src.AsSpan(i, len), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code))
                                        throw new JinjaException($"line {line}: invalid \\{e} escape in a string literal.");
                                    sb.Append((char)code);
                                    i += len;
                                    break;
                                }
                                default:
                                    // Python keeps unknown escapes verbatim (backslash included).
                                    sb.Append('\\').Append(e);
                                    break;
                            }
                            continue;
                        }
                        if (ch == '\n') line++;
                        sb.Append(ch);
                        i++;
                    }
                    toks.Add(new Tok(TokKind.String, sb.ToString(), line));
                    continue;
                }
                if (char.IsAsciiDigit(c))
                {
                    var s = i;
                    while (i < n && (char.IsAsciiDigit(src[i]) || src[i] == '_')) i++;
                    var isFloat = false;
                    if (i + 1 < n && src[i] == '.' && char.IsAsciiDigit(src[i + 1]))
                    {
                        isFloat = true;
                        i++;
                        while (i < n && char.IsAsciiDigit(src[i])) i++;
                    }
                    toks.Add(new Tok(isFloat ? TokKind.Float : TokKind.Integer, src[s..i].Replace("_", ""), line));
                    continue;
                }
                if (char.IsLetter(c) || c == '_')
                {
                    var s = i;
                    while (i < n && (char.IsLetterOrDigit(src[i]) || src[i] == '_')) i++;
                    toks.Add(new Tok(TokKind.Name, src[s..i], line));
                    continue;
                }
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(src, i, o, 0, o.Length) == 0);
                if (op is null) throw new JinjaException($"line {line}: unexpected character '{c}' in a template tag.");
                if (op == "{") braceDepth++;
                if (op == "}") braceDepth--;
                toks.Add(new Tok(TokKind.Op, op, line));
                i += op.Length;
            }
        }
        toks.Add(new Tok(TokKind.End, "", line));
        return toks;
    }
}
