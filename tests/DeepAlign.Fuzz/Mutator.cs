using System.Text;
using System.Text.Json.Nodes;

namespace DeepAlign.Fuzz;

/// <summary>
/// Deterministic mutations of seed files for the in-process campaign: JSON-structure edits (a node replaced by a
/// hostile value of another kind, removed or duplicated), byte edits (flips, inserts, deletes, splices of hostile
/// fragments, invalid UTF-8) and, for templates, splices of hostile Jinja. One seed number reproduces one input.
/// </summary>
internal static class Mutator
{
    private static readonly string[] Fragments =
    [
        "\\ud800", "\\udc00", "[[[[[[[[[[", "]]]]", "{\"a\":", "-1", "1e999", "NaN", "null", "\"", ",", "99999999999999999999", "\\u0000",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "{{ range(10**9) | length }}", "{{ 'a' * 10**9 }}", "{{ x | indent(10**9) }}",
        "{% for i in range(999999) %}{% for j in range(999999) %}{% endfor %}{% endfor %}", "{{ 9999999999999999999999 }}", "{{ (((((((((( }}",
        "{{ 'abc'[::9223372036854775807] }}", "{{ messages[0].content.replace(1, 2) }}", "{% set x = namespace(a=[]) %}", "(a+)+$", "\x00", "\u0130",
    ];

    public static byte[] Mutate(byte[] seed, bool isJson, int n)
    {
        var r = new Random(n);
        if (isJson && r.Next(2) == 0)
        {
            try { return Encoding.UTF8.GetBytes(MutateJson(Encoding.UTF8.GetString(seed), r)); }
            catch (System.Text.Json.JsonException) { }
        }
        return MutateBytes(seed, r);
    }

    private static JsonNode? Hostile(Random r) => r.Next(18) switch
    {
        0 => null,
        1 => JsonValue.Create(-1),
        2 => JsonValue.Create(1_000_000_000),
        3 => JsonValue.Create(long.MaxValue),
        4 => JsonValue.Create(1e308),
        5 => JsonValue.Create("NaN"),
        6 => JsonValue.Create(""),
        7 => JsonValue.Create("\ud800"),
        8 => new JsonArray(),
        9 => new JsonObject(),
        10 => JsonValue.Create(true),
        11 => JsonValue.Create(0.5),
        12 => new JsonArray(JsonValue.Create("a"), JsonValue.Create(1)),
        13 => JsonValue.Create(new string('a', 1 + r.Next(5000))),
        14 => JsonValue.Create(-2147483649L),
        15 => JsonValue.Create(2_000_000_000),
        16 => JsonValue.Create(Fragments[r.Next(Fragments.Length)]),
        _ => JsonValue.Create("(a+)+$"),
    };

    private static string MutateJson(string json, Random r)
    {
        var root = JsonNode.Parse(json);
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? node)
        {
            if (node is null) return;
            nodes.Add(node);
            if (node is JsonObject o) foreach (var kv in o.ToList()) Walk(kv.Value);
            else if (node is JsonArray a) foreach (var x in a.ToList()) Walk(x);
        }
        Walk(root);
        var edits = 1 + r.Next(3);
        for (var k = 0; k < edits && nodes.Count > 1; k++)
        {
            var target = nodes[1 + r.Next(nodes.Count - 1)];
            var parent = target.Parent;
            if (parent is JsonObject po)
            {
                var key = po.First(kv => ReferenceEquals(kv.Value, target)).Key;
                if (r.Next(4) == 0) po.Remove(key);
                else po[key] = Hostile(r);
            }
            else if (parent is JsonArray pa)
            {
                var i = pa.IndexOf(target);
                switch (r.Next(4))
                {
                    case 0: pa.RemoveAt(i); break;
                    case 1: pa.Add(target.DeepClone()); break;
                    default: pa[i] = Hostile(r); break;
                }
            }
            nodes.Clear();
            Walk(root);
        }
        return root?.ToJsonString() ?? "null";
    }

    private static byte[] MutateBytes(byte[] data, Random r)
    {
        var list = new List<byte>(data);
        var edits = 1 + r.Next(6);
        for (var k = 0; k < edits; k++)
        {
            var pos = list.Count == 0 ? 0 : r.Next(list.Count);
            switch (r.Next(8))
            {
                case 0 when list.Count > 0: list[pos] ^= (byte)(1 << r.Next(8)); break;
                case 1: list.Insert(pos, (byte)r.Next(256)); break;
                case 2 when list.Count > 0: list.RemoveAt(pos); break;
                case 3:
                case 4: list.InsertRange(pos, Encoding.UTF8.GetBytes(Fragments[r.Next(Fragments.Length)])); break;
                case 5 when list.Count > 0: list.RemoveRange(pos, Math.Min(list.Count - pos, r.Next(64))); break;
                case 6 when list.Count > 8: // overwrite 8 bytes (hits safetensors length fields and offsets)
                    for (var b = 0; b < 8 && pos + b < list.Count; b++) list[pos + b] = (byte)r.Next(256);
                    break;
                default: list.InsertRange(pos, new byte[] { 0xC3, 0x28, 0xFF, 0xED, 0xA0, 0x80 }.Take(1 + r.Next(6))); break;
            }
        }
        return list.ToArray();
    }
}
