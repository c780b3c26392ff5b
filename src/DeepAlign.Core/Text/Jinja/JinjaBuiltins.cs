using System.Globalization;
using System.Net;
using System.Text;

namespace DeepAlign.Text.Jinja;

/// <summary>Python methods of str, list and dict that chat templates call.</summary>
internal static class JinjaMethods
{
    public static bool TryCall(object? self, string name, List<object?> a, Dictionary<string, object?> k, JinjaRenderState state, int line, out object? result)
    {
        result = null;
        object? Arg(int i, string kw) => i < a.Count ? a[i] : k.TryGetValue(kw, out var v) ? v : null;
        switch (self)
        {
            case string s:
                switch (name)
                {
                    case "strip": result = PyStrip(s, Arg(0, "chars") as string, true, true); return true;
                    case "lstrip": result = PyStrip(s, Arg(0, "chars") as string, true, false); return true;
                    case "rstrip": result = PyStrip(s, Arg(0, "chars") as string, false, true); return true;
                    case "upper": result = s.ToUpperInvariant(); return true;
                    case "lower": result = s.ToLowerInvariant(); return true;
                    case "title": result = JinjaFilters.Title(s); return true;
                    case "capitalize": result = s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); return true;
                    case "startswith": result = Affix(s, Arg(0, "prefix"), true, line); return true;
                    case "endswith": result = Affix(s, Arg(0, "suffix"), false, line); return true;
                    case "split":
                        state.Iterate(s.Length, line);
                        result = PySplit(s, Arg(0, "sep") as string, Arg(1, "maxsplit") is long m ? (int)Math.Clamp(m, -1, int.MaxValue) : -1);
                        state.List(((List<object?>)result).Count, line, "split()");
                        return true;
                    case "replace":
                    {
                        var old = StrArg(Arg(0, "old"), "replace", "old", line);
                        var @new = StrArg(Arg(1, "new"), "replace", "new", line);
                        var count = Arg(2, "count") is long c ? (int)Math.Clamp(c, -1, int.MaxValue) : -1;
                        state.String(ReplacedLength(s, old, @new, count), line, "replace()");
                        result = PyReplace(s, old, @new, count);
                        return true;
                    }
                    case "find": result = (long)s.IndexOf(StrArg(Arg(0, "sub"), "find", "sub", line), StringComparison.Ordinal); return true;
                    case "count": result = (long)CountOccurrences(s, StrArg(Arg(0, "sub"), "count", "sub", line)); return true;
                    case "join": result = Join(s, JinjaValues.Iterate(Arg(0, "iterable"), line), state, line); return true;
                    case "isdigit": result = s.Length > 0 && s.All(char.IsDigit); return true;
                    case "isspace": result = s.Length > 0 && s.All(char.IsWhiteSpace); return true;
                    case "splitlines":
                        state.Iterate(s.Length, line);
                        result = s.Split('\n').Select(x => (object?)x.TrimEnd('\r')).ToList();
                        return true;
                    case "format": throw new JinjaException($"line {line}: str.format() is not supported.");
                }
                return false;
            case List<object?> list:
                switch (name)
                {
                    case "index": state.Iterate(list.Count, line); result = (long)list.FindIndex(x => JinjaValues.Equals(x, Arg(0, "value"))); return true;
                    case "count": state.Iterate(list.Count, line); result = (long)list.Count(x => JinjaValues.Equals(x, Arg(0, "value"))); return true;
                }
                return false;
            case JDict d when !d.IsNamespace && !d.ContainsKey(name):
                switch (name)
                {
                    case "get":
                        result = d.TryGetValue(JinjaValues.ToPythonString(Arg(0, "key")), out var v) ? v : a.Count > 1 ? a[1] : null;
                        return true;
                    case "items": result = d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(); return true;
                    case "keys": result = d.Keys.Cast<object?>().ToList(); return true;
                    case "values": result = d.Select(kv => kv.Value).ToList(); return true;
                }
                return false;
        }
        return false;
    }

    /// <summary>A string argument, or a located error naming the method and parameter.</summary>
    public static string StrArg(object? v, string method, string parameter, int line) =>
        v as string ?? throw new JinjaException($"line {line}: {method}() needs a string for '{parameter}', got {JinjaValues.TypeName(v)}.");

    /// <summary>The length of <see cref="PyReplace"/>'s result, computed without building it.</summary>
    public static long ReplacedLength(string s, string old, string @new, int count)
    {
        long n = old.Length == 0 ? s.Length + 1 : CountOccurrences(s, old);
        if (count >= 0) n = Math.Min(n, count);
        return s.Length + n * ((long)@new.Length - old.Length);
    }

    /// <summary>Joins items after checking the result's size.</summary>
    public static string Join(string sep, IEnumerable<object?> items, JinjaRenderState state, int line)
    {
        var parts = new List<string>();
        long total = 0;
        foreach (var x in items)
        {
            state.Iterate(1, line);
            var p = JinjaValues.ToPythonString(x);
            total += p.Length + (parts.Count > 0 ? sep.Length : 0);
            if (total > state.Limits.MaxStringLength) state.String(total, line, "join");
            parts.Add(p);
        }
        state.String(total, line, "join");
        return string.Join(sep, parts);
    }

    private static bool Affix(string s, object? arg, bool prefix, int line)
    {
        IEnumerable<object?> options = arg is List<object?> l ? l : [arg];
        foreach (var o in options)
        {
            if (o is not string p) throw new JinjaException($"line {line}: {(prefix ? "startswith" : "endswith")} needs a string.");
            if (prefix ? s.StartsWith(p, StringComparison.Ordinal) : s.EndsWith(p, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    public static string PyStrip(string s, string? chars, bool left, bool right)
    {
        Func<char, bool> strip = chars is null ? char.IsWhiteSpace : c => chars.Contains(c);
        var start = 0;
        var end = s.Length;
        if (left) while (start < end && strip(s[start])) start++;
        if (right) while (end > start && strip(s[end - 1])) end--;
        return s[start..end];
    }

    public static List<object?> PySplit(string s, string? sep, int maxSplit)
    {
        var result = new List<object?>();
        if (sep is null)
        {
            var parts = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (maxSplit < 0 || parts.Length <= maxSplit + 1) return parts.Cast<object?>().ToList();
            // Rare: whitespace split with maxsplit.
            var rest = s.TrimStart();
            for (var i = 0; i < maxSplit && rest.Length > 0; i++)
            {
                var j = 0;
                while (j < rest.Length && !char.IsWhiteSpace(rest[j])) j++;
                result.Add(rest[..j]);
                rest = rest[j..].TrimStart();
            }
            if (rest.Length > 0) result.Add(rest);
            return result;
        }
        if (sep.Length == 0) throw new JinjaException("split(): empty separator.");
        var pos = 0;
        var splits = 0;
        while (maxSplit < 0 || splits < maxSplit)
        {
            var i = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (i < 0) break;
            result.Add(s[pos..i]);
            pos = i + sep.Length;
            splits++;
        }
        result.Add(s[pos..]);
        return result;
    }

    public static string PyReplace(string s, string old, string @new, int count)
    {
        if (count < 0) return old.Length == 0 ? string.Join(@new, EnumerateWithEnds(s)) : s.Replace(old, @new, StringComparison.Ordinal);
        var sb = new StringBuilder();
        var pos = 0;
        for (var n = 0; n < count; n++)
        {
            var i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0 || old.Length == 0) break;
            sb.Append(s, pos, i - pos).Append(@new);
            pos = i + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static IEnumerable<string> EnumerateWithEnds(string s)
    {
        yield return "";
        foreach (var c in s) yield return c.ToString();
        yield return "";
    }

    private static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        var n = 0;
        for (var i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}

/// <summary>Jinja filters used by chat templates.</summary>
internal static class JinjaFilters
{
    public static object? Apply(string name, object? v, List<object?> a, Dictionary<string, object?> k, JinjaContext ctx, int line)
    {
        object? Arg(int i, string kw, object? dflt = null) => i < a.Count ? a[i] : k.TryGetValue(kw, out var x) ? x : dflt;
        var state = ctx.State;
        if (v is List<object?> visited) state.Iterate(visited.Count, line);
        else if (v is JDict visitedDict) state.Iterate(visitedDict.Count, line);
        switch (name)
        {
            case "trim": return JinjaMethods.PyStrip(Str(v, name, line), Arg(0, "chars") as string, true, true);
            case "upper": return Str(v, name, line).ToUpperInvariant();
            case "lower": return Str(v, name, line).ToLowerInvariant();
            case "title": return Title(Str(v, name, line));
            case "capitalize": { var s = Str(v, name, line); return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); }
            case "string": return JinjaValues.ToPythonString(v);
            case "safe": return v;
            case "e":
            case "escape": return WebUtility.HtmlEncode(JinjaValues.ToPythonString(v)).Replace("&#39;", "&#39;");
            case "length":
            case "count":
                return v switch
                {
                    string s => (long)s.Length,
                    List<object?> l => (long)l.Count,
                    JDict d => (long)d.Count,
                    JinjaUndefined => 0L,
                    _ => throw new JinjaException($"line {line}: '{name}' filter on {JinjaValues.TypeName(v)}."),
                };
            case "first": { var l = JinjaValues.Iterate(v, line).ToList(); return l.Count > 0 ? l[0] : JinjaUndefined.Instance; }
            case "last": { var l = JinjaValues.Iterate(v, line).ToList(); return l.Count > 0 ? l[^1] : JinjaUndefined.Instance; }
            case "list": return JinjaValues.Iterate(v, line).ToList();
            case "reverse": return v is string rs ? new string(rs.Reverse().ToArray()) : JinjaValues.Iterate(v, line).Reverse().ToList();
            case "join":
            {
                var sep = Arg(0, "d", "") as string ?? "";
                var attr = Arg(1, "attribute") as string;
                var items = JinjaValues.Iterate(v, line);
                if (attr is not null) items = items.Select(x => JinjaValues.GetAttribute(x, attr, line));
                return JinjaMethods.Join(sep, items, state, line);
            }
            case "default":
            case "d":
            {
                var dflt = Arg(0, "default_value", "");
                var boolean = JinjaValues.Truthy(Arg(1, "boolean", false));
                return v is JinjaUndefined || (boolean && !JinjaValues.Truthy(v)) ? dflt : v;
            }
            case "int":
                return v switch
                {
                    long l => (object)l,
                    double d => JinjaValues.ToLong(d, line),
                    bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) => p,
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long l => (object)(double)l,
                    double d => d,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var p) => p,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs": return v switch { long l when l == long.MinValue => throw new JinjaException($"line {line}: integer overflow in abs."), long l => (object)Math.Abs(l), double d => Math.Abs(d), _ => throw new JinjaException($"line {line}: abs of {JinjaValues.TypeName(v)}.") };
            case "round":
            {
                var precision = (int)Math.Clamp(JinjaValues.ToLong(Arg(0, "precision", 0L), line), 0, 15);
                var d = v is long l ? l : v is double dd ? dd : throw new JinjaException($"line {line}: round of {JinjaValues.TypeName(v)}.");
                return Math.Round(d, precision, MidpointRounding.ToEven);
            }
            case "items":
                return v is JDict id ? id.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()
                    : v is JinjaUndefined or null ? new List<object?>()
                    : throw new JinjaException($"line {line}: 'items' filter needs a dict, not {JinjaValues.TypeName(v)}.");
            case "dictsort":
                return v is JDict ds ? ds.OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()
                    : throw new JinjaException($"line {line}: 'dictsort' needs a dict.");
            case "unique":
            {
                var result = new List<object?>();
                foreach (var x in JinjaValues.Iterate(v, line))
                {
                    state.Iterate(result.Count, line);
                    if (!result.Any(r => JinjaValues.Equals(r, x))) result.Add(x);
                }
                return result;
            }
            case "sort":
            {
                var reverse = JinjaValues.Truthy(Arg(0, "reverse", false));
                var attr = Arg(2, "attribute") as string;
                var items = JinjaValues.Iterate(v, line).ToList();
                state.Iterate((long)items.Count * Math.Max(1, (int)Math.Log2(items.Count + 1)), line);
                var keyed = items.Select(x => (Item: x, Key: attr is null ? x : JinjaValues.GetAttribute(x, attr, line))).ToList();
                var sorted = keyed.OrderBy(x => x.Key, Comparer<object?>.Create((p, q) => JinjaValues.Compare(p, q, line))).Select(x => x.Item).ToList();
                if (reverse) sorted.Reverse();
                return sorted;
            }
            case "max":
            case "min":
            {
                var items = JinjaValues.Iterate(v, line).ToList();
                if (items.Count == 0) return JinjaUndefined.Instance;
                var best = items[0];
                foreach (var x in items.Skip(1))
                {
                    var c = JinjaValues.Compare(x, best, line);
                    if (name == "max" ? c > 0 : c < 0) best = x;
                }
                return best;
            }
            case "sum":
            {
                object? total = Arg(1, "start", 0L);
                foreach (var x in JinjaValues.Iterate(v, line)) total = JinjaValues.Binary("+", total, x, line);
                return total;
            }
            case "map":
            {
                var items = JinjaValues.Iterate(v, line);
                if (k.TryGetValue("attribute", out var attrObj) && attrObj is string attr)
                    return items.Select(x =>
                    {
                        var r = JinjaValues.GetAttribute(x, attr, line);
                        return r is JinjaUndefined && k.TryGetValue("default", out var dv) ? dv : r;
                    }).ToList();
                if (a.Count > 0 && a[0] is string filter)
                    return items.Select(x => Apply(filter, x, a.Skip(1).ToList(), new Dictionary<string, object?>(StringComparer.Ordinal), ctx, line)).ToList();
                throw new JinjaException($"line {line}: 'map' needs attribute= or a filter name.");
            }
            case "select":
            case "reject":
            case "selectattr":
            case "rejectattr":
            {
                var byAttr = name.EndsWith("attr", StringComparison.Ordinal);
                var keep = name.StartsWith("select", StringComparison.Ordinal);
                var attr = byAttr ? JinjaMethods.StrArg(a.Count > 0 ? a[0] : null, name, "attribute", line) : null;
                var rest = byAttr ? a.Skip(1).ToList() : a;
                var test = rest.Count > 0 ? JinjaMethods.StrArg(rest[0], name, "test", line) : null;
                var testArgs = rest.Skip(1).ToList();
                var result = new List<object?>();
                foreach (var x in JinjaValues.Iterate(v, line))
                {
                    var target = attr is null ? x : JinjaValues.GetAttribute(x, attr, line);
                    var ok = test is null ? JinjaValues.Truthy(target) : JinjaTests.Apply(test, target, testArgs, line);
                    if (ok == keep) result.Add(x);
                }
                return result;
            }
            case "replace":
            {
                var count = Arg(2, "count") is long c ? (int)Math.Clamp(c, -1, int.MaxValue) : -1;
                var text = Str(v, name, line);
                var old = JinjaMethods.StrArg(Arg(0, "old"), "replace", "old", line);
                var @new = JinjaMethods.StrArg(Arg(1, "new"), "replace", "new", line);
                state.String(JinjaMethods.ReplacedLength(text, old, @new, count), line, "replace");
                return JinjaMethods.PyReplace(text, old, @new, count);
            }
            case "indent":
            {
                var s = Str(v, name, line);
                var width = Arg(0, "width", 4L);
                var padWidth = width is string ws ? ws.Length : Math.Max(0, JinjaValues.ToLong(width, line));
                var lineCount = 1 + s.AsSpan().Count('\n');
                state.String(s.Length + (Int128)padWidth * lineCount > long.MaxValue ? long.MaxValue : (long)(s.Length + (Int128)padWidth * lineCount), line, "indent");
                var pad = width is string ws2 ? ws2 : new string(' ', (int)padWidth);
                var first = JinjaValues.Truthy(Arg(1, "first", false));
                var blank = JinjaValues.Truthy(Arg(2, "blank", false));
                var lines = s.Split('\n');
                var sb = new StringBuilder();
                for (var i = 0; i < lines.Length; i++)
                {
                    if (i > 0) sb.Append('\n');
                    var doPad = (i > 0 || first) && (blank || lines[i].Length > 0);
                    if (doPad) sb.Append(pad);
                    sb.Append(lines[i]);
                }
                return sb.ToString();
            }
            case "wordcount": return (long)Str(v, name, line).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "tojson":
            {
                var indent = Arg(0, "indent");
                var ensureAscii = JinjaValues.Truthy(k.GetValueOrDefault("ensure_ascii", false));
                var sortKeys = JinjaValues.Truthy(k.GetValueOrDefault("sort_keys", false));
                string? itemSep = null, keySep = null;
                if (k.TryGetValue("separators", out var seps) && seps is List<object?> sl && sl.Count == 2)
                {
                    itemSep = JinjaMethods.StrArg(sl[0], "tojson", "separators", line);
                    keySep = JinjaMethods.StrArg(sl[1], "tojson", "separators", line);
                }
                int? indentWidth = indent is null or JinjaUndefined ? null : (int)Math.Clamp(JinjaValues.ToLong(indent, line), 0, int.MaxValue);
                var json = JsonDumps.Dumps(v, indentWidth, ensureAscii, sortKeys, itemSep, keySep, line, state.Limits.MaxStringLength);
                state.String(json.Length, line, "tojson");
                return json;
            }
            default:
                throw new JinjaException($"line {line}: the Jinja filter '{name}' is not supported.");
        }
    }

    private static string Str(object? v, string filter, int line) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => JinjaValues.ToPythonString(v),
    };

    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        var prevLetter = false;
        foreach (var c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }
}

/// <summary>Jinja tests (<c>x is defined</c>, ...).</summary>
internal static class JinjaTests
{
    public static bool Apply(string name, object? v, List<object?> a, int line) => name switch
    {
        "defined" => v is not JinjaUndefined,
        "undefined" => v is JinjaUndefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is JDict,
        "iterable" => v is string or List<object?> or JDict,
        "sequence" => v is string or List<object?> or JDict,
        "callable" => v is JinjaFunction,
        "odd" => JinjaValues.ToLong(v) % 2 != 0,
        "even" => JinjaValues.ToLong(v) % 2 == 0,
        "divisibleby" => DivisibleBy(JinjaValues.ToLong(v, line), JinjaValues.ToLong(Arg0(a, name, line), line), line),
        "lower" => v is string s && s == s.ToLowerInvariant(),
        "upper" => v is string u && u == u.ToUpperInvariant(),
        "eq" or "equalto" or "==" => JinjaValues.Equals(v, Arg0(a, name, line)),
        "ne" or "!=" => !JinjaValues.Equals(v, Arg0(a, name, line)),
        "lt" or "lessthan" or "<" => JinjaValues.Compare(v, Arg0(a, name, line), line) < 0,
        "gt" or "greaterthan" or ">" => JinjaValues.Compare(v, Arg0(a, name, line), line) > 0,
        "le" or "<=" => JinjaValues.Compare(v, Arg0(a, name, line), line) <= 0,
        "ge" or ">=" => JinjaValues.Compare(v, Arg0(a, name, line), line) >= 0,
        "in" => JinjaValues.Contains(Arg0(a, name, line), v, line),
        "sameas" => v is null ? Arg0(a, name, line) is null : v is bool b ? Arg0(a, name, line) is bool c && b == c : ReferenceEquals(v, Arg0(a, name, line)),
        _ => throw new JinjaException($"line {line}: the Jinja test '{name}' is not supported."),
    };

    private static object? Arg0(List<object?> a, string test, int line) =>
        a.Count > 0 ? a[0] : throw new JinjaException($"line {line}: the test '{test}' needs an argument.");

    private static bool DivisibleBy(long x, long y, int line) =>
        y == 0 ? throw new JinjaException($"line {line}: divisibleby(0).") : y == -1 || x % y == 0;
}

/// <summary>Python json.dumps as transformers' tojson filter calls it (ensure_ascii=False by default).</summary>
internal static class JsonDumps
{
    public static string Dumps(object? v, int? indent, bool ensureAscii, bool sortKeys, string? itemSep, string? keySep, int line, int maxLength = int.MaxValue)
    {
        itemSep ??= indent is null ? ", " : ",";
        keySep ??= ": ";
        var sb = new StringBuilder();
        Write(sb, v, indent, 0, ensureAscii, sortKeys, itemSep, keySep, line, maxLength);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, int? indent, int level, bool ascii, bool sort, string itemSep, string keySep, int line, int maxLength)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        if (sb.Length > maxLength || (indent is int w && sb.Length + (long)w * (level + 1) > maxLength))
            throw new JinjaException($"line {line}: tojson would build more than JinjaLimits.MaxStringLength ({maxLength}) characters.");
        switch (v)
        {
            case null or JinjaUndefined: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d: sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.FormatFloat(d)); return;
            case string s: WriteString(sb, s, ascii); return;
            case List<object?> list:
            {
                if (list.Count == 0) { sb.Append("[]"); return; }
                sb.Append('[');
                for (var i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(itemSep);
                    NewLine(sb, indent, level + 1);
                    Write(sb, list[i], indent, level + 1, ascii, sort, itemSep, keySep, line, maxLength);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                return;
            }
            case JDict dict:
            {
                if (dict.Count == 0) { sb.Append("{}"); return; }
                sb.Append('{');
                var entries = sort ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal) : (IEnumerable<KeyValuePair<string, object?>>)dict;
                var first = true;
                foreach (var (key, value) in entries)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, indent, level + 1);
                    WriteString(sb, key, ascii);
                    sb.Append(keySep);
                    Write(sb, value, indent, level + 1, ascii, sort, itemSep, keySep, line, maxLength);
                }
                NewLine(sb, indent, level);
                sb.Append('}');
                return;
            }
            default:
                throw new JinjaException($"line {line}: tojson cannot serialise {JinjaValues.TypeName(v)}.");
        }
    }

    private static void NewLine(StringBuilder sb, int? indent, int level)
    {
        if (indent is not int n) return;
        sb.Append('\n').Append(' ', n * level);
    }

    private static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}

/// <summary>Python strftime for strftime_now().</summary>
internal static class PyStrftime
{
    public static string Format(DateTimeOffset t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            var c = format[++i];
            var noPad = false;
            if (c == '-' && i + 1 < format.Length) { noPad = true; c = format[++i]; }
            string Num(int v, int width) => noPad ? v.ToString(inv) : v.ToString(inv).PadLeft(width, '0');
            sb.Append(c switch
            {
                'd' => Num(t.Day, 2),
                'm' => Num(t.Month, 2),
                'Y' => t.Year.ToString(inv),
                'y' => Num(t.Year % 100, 2),
                'H' => Num(t.Hour, 2),
                'I' => Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'b' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'j' => Num(t.DayOfYear, 3),
                '%' => "%",
                _ => throw new NotSupportedException($"strftime_now: the format code '%{c}' is not supported."),
            });
        }
        return sb.ToString();
    }
}
