using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DeepAlign.Text.Jinja;

/// <summary>Jinja's undefined value: falsy, renders as an empty string.</summary>
internal sealed class JinjaUndefined
{
    public static readonly JinjaUndefined Instance = new();
    private JinjaUndefined() { }
    public override string ToString() => "";
}

/// <summary>A callable value (global function, macro, loop.cycle).</summary>
internal sealed class JinjaFunction(Func<List<object?>, Dictionary<string, object?>, object?> body)
{
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => body(args, kwargs);
}

/// <summary>An insertion-ordered dictionary (Python dict); also used for namespace() objects.</summary>
internal sealed class JDict : IEnumerable<KeyValuePair<string, object?>>
{
    private readonly List<string> _keys = new();
    private readonly Dictionary<string, object?> _map = new(StringComparer.Ordinal);
    public bool IsNamespace { get; init; }

    public int Count => _keys.Count;
    public IEnumerable<string> Keys => _keys;

    public object? this[string key]
    {
        get => _map[key];
        set
        {
            if (!_map.ContainsKey(key)) _keys.Add(key);
            _map[key] = value;
        }
    }

    public bool TryGetValue(string key, out object? value) => _map.TryGetValue(key, out value);
    public bool ContainsKey(string key) => _map.ContainsKey(key);

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        foreach (var k in _keys) yield return new KeyValuePair<string, object?>(k, _map[k]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Python/Jinja semantics for values: .NET string, bool, long, double, null (None), JinjaUndefined, List&lt;object?&gt;, JDict, JinjaFunction.</summary>
internal static class JinjaValues
{
    /// <summary>Converts caller-supplied .NET values (records, dictionaries, lists, JsonElement) to template values.</summary>
    public static object? FromDotNet(object? v)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        switch (v)
        {
            case null: return null;
            case string or bool or long or double or JinjaUndefined or JDict or JinjaFunction: return v;
            case int i: return (long)i;
            case short s: return (long)s;
            case byte b: return (long)b;
            case float f: return (double)f;
            case decimal m: return (double)m;
            case JsonElement je: return FromJson(je);
            case IDictionary<string, object?> d:
            {
                var r = new JDict();
                foreach (var kv in d) r[kv.Key] = FromDotNet(kv.Value);
                return r;
            }
            case IReadOnlyDictionary<string, object?> rd:
            {
                var r = new JDict();
                foreach (var kv in rd) r[kv.Key] = FromDotNet(kv.Value);
                return r;
            }
            case IDictionary nd:
            {
                var r = new JDict();
                foreach (DictionaryEntry kv in nd) r[Convert.ToString(kv.Key, CultureInfo.InvariantCulture)!] = FromDotNet(kv.Value);
                return r;
            }
            case IEnumerable e:
                return e.Cast<object?>().Select(FromDotNet).ToList();
            case ChatMessage msg:
                return msg.ToTemplateValue();
            default:
                throw new ArgumentException($"A value of type {v.GetType().Name} cannot be passed to a chat template (use string, bool, numbers, lists, dictionaries or JsonElement).");
        }
    }

    public static object? FromJson(JsonElement e)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        return FromJsonCore(e);
    }

    private static object? FromJsonCore(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => ObjectFromJson(e),
        _ => null,
    };

    private static JDict ObjectFromJson(JsonElement e)
    {
        var d = new JDict();
        foreach (var p in e.EnumerateObject()) d[p.Name] = FromJson(p.Value);
        return d;
    }

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        JinjaUndefined => "undefined",
        string => "a string",
        bool => "a boolean",
        long => "an integer",
        double => "a float",
        List<object?> => "a list",
        JDict d => d.IsNamespace ? "a namespace" : "a dict",
        JinjaFunction => "a function",
        _ => v.GetType().Name,
    };

    public static bool Truthy(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        JDict d => d.Count > 0,
        _ => true,
    };

    public static string ToPythonString(object? v) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        return ReprCore(v);
    }

    private static string ReprCore(object? v) => v switch
    {
        null => "None",
        JinjaUndefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        string s => ReprString(s),
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        JDict d => d.IsNamespace ? "<Namespace>" : "{" + string.Join(", ", d.Select(kv => ReprString(kv.Key) + ": " + Repr(kv.Value))) + "}",
        JinjaFunction => "<function>",
        _ => v.ToString() ?? "",
    };

    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E')) return d.ToString("0.0###############e+00", CultureInfo.InvariantCulture);
        return s.Contains('.') ? s : s + ".0";
    }

    private static string ReprString(string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(quote);
        foreach (var c in s)
        {
            if (c == quote || c == '\\') sb.Append('\\').Append(c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.Append(quote).ToString();
    }

    public static IEnumerable<object?> Iterate(object? v, int line) => v switch
    {
        List<object?> l => l,
        JDict d => d.Keys.Cast<object?>(),
        string s => EnumerateChars(s),
        null or JinjaUndefined => [],
        _ => throw new JinjaException($"line {line}: {TypeName(v)} is not iterable."),
    };

    private static IEnumerable<object?> EnumerateChars(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length) { yield return s.Substring(i, 2); i++; }
            else yield return s[i].ToString();
        }
    }

    public static object? GetAttribute(object? target, string name, int line)
    {
        switch (target)
        {
            case JDict d:
                return d.TryGetValue(name, out var v) ? v : JinjaUndefined.Instance;
            case JinjaUndefined:
                throw new JinjaException($"line {line}: cannot read attribute '{name}' of an undefined value.");
            case null:
                throw new JinjaException($"line {line}: cannot read attribute '{name}' of none.");
            default:
                return JinjaUndefined.Instance;
        }
    }

    public static object? GetItem(object? target, object? key, int line)
    {
        switch (target)
        {
            case List<object?> list when key is long or bool:
            {
                var i = ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : JinjaUndefined.Instance;
            }
            case string s when key is long or bool:
            {
                var i = ToLong(key);
                if (i < 0) i += s.Length;
                return i >= 0 && i < s.Length ? s[(int)i].ToString() : JinjaUndefined.Instance;
            }
            case JDict d when key is string k:
                return d.TryGetValue(k, out var v) ? v : JinjaUndefined.Instance;
            case JDict:
                return JinjaUndefined.Instance;
            case JinjaUndefined:
                throw new JinjaException($"line {line}: cannot index an undefined value with {Repr(key)}.");
            case null:
                throw new JinjaException($"line {line}: cannot index none with {Repr(key)}.");
            default:
                return JinjaUndefined.Instance;
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step, int line)
    {
        var st = step is null or JinjaUndefined ? 1 : ToLong(step, line);
        if (st == 0) throw new JinjaException($"line {line}: slice step cannot be zero.");
        int count;
        Func<int, object?> at;
        switch (target)
        {
            case List<object?> l: count = l.Count; at = i => l[i]; break;
            case string s: count = s.Length; at = i => s[i]; break;
            default: throw new JinjaException($"line {line}: cannot slice {TypeName(target)}.");
        }
        long Norm(object? v, long dflt, bool isStart)
        {
            if (v is null or JinjaUndefined) return dflt;
            var x = ToLong(v, line);
            if (x < 0) x = x < -(long)count ? -1 : x + count;
            if (st > 0) return Math.Clamp(x, 0, count);
            return Math.Clamp(x, -1, count - 1);
        }
        var a = Norm(start, st > 0 ? 0 : count - 1, true);
        var b = Norm(stop, st > 0 ? count : -1, false);
        var items = new List<object?>();
        for (var i = a; st > 0 ? i < b : i > b;)
        {
            items.Add(at((int)i));
            // Overflow-safe step: once the next index would pass the bound, the slice is complete.
            if (st > 0 ? i > b - st : i < b - st) break;
            i += st;
        }
        if (target is string) return string.Concat(items.Select(c => c!.ToString()));
        return items;
    }

    public static long ToLong(object? v) => ToLong(v, null);

    public static long ToLong(object? v, int? line) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d when double.IsFinite(d) && d >= -9.2233720368547758E18 && d < 9.2233720368547758E18 => (long)d,
        double d => throw new JinjaException($"{(line is int n ? $"line {n}: " : "")}the float {FormatFloat(d)} does not fit in a 64-bit integer."),
        _ => throw new JinjaException($"{(line is int n2 ? $"line {n2}: " : "")}expected an integer but got {TypeName(v)}."),
    };

    private static bool IsNumber(object? v) => v is long or double or bool;

    private static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaException($"expected a number but got {TypeName(v)}."),
    };

    public static new bool Equals(object? a, object? b)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        if (a is JinjaUndefined || b is JinjaUndefined) return a is JinjaUndefined && b is JinjaUndefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        if (a is string sa && b is string sb) return string.Equals(sa, sb, StringComparison.Ordinal);
        if (a is List<object?> la && b is List<object?> lb) return la.Count == lb.Count && la.Zip(lb).All(p => Equals(p.First, p.Second));
        if (a is JDict da && b is JDict db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var o) && Equals(kv.Value, o));
        return ReferenceEquals(a, b);
    }

    public static int Compare(object? a, object? b, int line)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (var i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                var c = Compare(la[i], lb[i], line);
                if (c != 0) return c;
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new JinjaException($"line {line}: cannot compare {TypeName(a)} with {TypeName(b)}.");
    }

    public static bool Contains(object? container, object? item, int line) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw new JinjaException($"line {line}: 'in <string>' needs a string on the left, not {TypeName(item)}."),
        List<object?> l => l.Any(x => Equals(x, item)),
        JDict d => item is string k && d.ContainsKey(k),
        JinjaUndefined or null => false,
        _ => throw new JinjaException($"line {line}: {TypeName(container)} does not support 'in'."),
    };

    public static object? Binary(string op, object? a, object? b, int line)
    {
        switch (op)
        {
            case "==": return Equals(a, b);
            case "!=": return !Equals(a, b);
            case "<": return Compare(a, b, line) < 0;
            case ">": return Compare(a, b, line) > 0;
            case "<=": return Compare(a, b, line) <= 0;
            case ">=": return Compare(a, b, line) >= 0;
            case "in": return Contains(b, a, line);
            case "not in": return !Contains(b, a, line);
            case "~": return ToPythonString(a) + ToPythonString(b);
            case "+":
                if (a is string sa && b is string sb) return sa + sb;
                if (a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
                break;
            case "*":
                if (a is string rs && b is long n1) return Repeat(rs, n1, line);
                if (a is long n2 && b is string rs2) return Repeat(rs2, n2, line);
                break;
        }
        if (IsNumber(a) && IsNumber(b))
        {
            var isFloat = a is double || b is double;
            switch (op)
            {
                case "+": return isFloat ? ToDouble(a) + ToDouble(b) : Checked(() => checked(ToLong(a) + ToLong(b)), op, line);
                case "-": return isFloat ? ToDouble(a) - ToDouble(b) : Checked(() => checked(ToLong(a) - ToLong(b)), op, line);
                case "*": return isFloat ? ToDouble(a) * ToDouble(b) : Checked(() => checked(ToLong(a) * ToLong(b)), op, line);
                case "/":
                    if (ToDouble(b) == 0) throw new JinjaException($"line {line}: division by zero.");
                    return ToDouble(a) / ToDouble(b);
                case "//":
                    if (ToDouble(b) == 0) throw new JinjaException($"line {line}: division by zero.");
                    if (isFloat) return Math.Floor(ToDouble(a) / ToDouble(b));
                    { var x = ToLong(a); var y = ToLong(b); if (x == long.MinValue && y == -1) throw Overflow(op, line); var q = x / y; return (x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q; }
                case "%":
                    if (ToDouble(b) == 0) throw new JinjaException($"line {line}: modulo by zero.");
                    if (isFloat) { var x = ToDouble(a); var y = ToDouble(b); return (object)(x - y * Math.Floor(x / y)); }
                    { var x = ToLong(a); var y = ToLong(b); if (y == -1) return 0L; var r = x % y; return r != 0 && (r < 0) != (y < 0) ? r + y : r; }
                case "**":
                    return !isFloat && ToLong(b) >= 0 ? IntPow(ToLong(a), ToLong(b), line) : Math.Pow(ToDouble(a), ToDouble(b));
            }
        }
        throw new JinjaException($"line {line}: unsupported operand types for '{op}': {TypeName(a)} and {TypeName(b)}.");
    }

    private static JinjaException Overflow(string op, int line) =>
        new($"line {line}: integer overflow in '{op}' (integers are 64-bit in DeepAlign's Jinja).");

    private static object Checked(Func<long> f, string op, int line)
    {
        try { return f(); }
        catch (OverflowException) { throw Overflow(op, line); }
    }

    private static object IntPow(long x, long n, int line)
    {
        long result = 1;
        try
        {
            checked
            {
                while (n > 0)
                {
                    if ((n & 1) == 1) result *= x;
                    n >>= 1;
                    if (n > 0) x *= x;
                }
            }
        }
        catch (OverflowException) { throw Overflow("**", line); }
        return result;
    }

    private static string Repeat(string s, long n, int line)
    {
        if (n <= 0 || s.Length == 0) return "";
        if (s.Length * (Int128)n > int.MaxValue) throw new JinjaException($"line {line}: '*' would build a string of {s.Length * (Int128)n} characters.");
        var sb = new StringBuilder(s.Length * (int)n);
        for (long i = 0; i < n; i++) sb.Append(s);
        return sb.ToString();
    }
}
