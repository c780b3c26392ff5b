using System.Text;
using System.Text.Json.Nodes;
using FluentAssertions;
using FluentAssertions.Execution;

namespace DeepAlign.Core.Tests.Reliability;

/// <summary>
/// Shared tools of the hostile-input tests: byte-level and JSON-structure mutations of valid files (driven by one
/// seed, so a failing case is reproducible from it) and the assertion that only the format's typed exception escapes.
/// </summary>
internal static class Hostile
{
    /// <summary>Runs <paramref name="act"/> and fails unless it returns or throws <typeparamref name="TFamily"/> (subclasses included).</summary>
    public static Exception? OnlyTyped<TFamily>(Action act, string context) where TFamily : Exception
    {
        try
        {
            act();
            return null;
        }
        catch (TFamily e)
        {
            e.Message.Should().NotBeNullOrWhiteSpace();
            return e;
        }
        catch (Exception e)
        {
            throw new AssertionFailedException($"{context}: expected success or {typeof(TFamily).Name}, got {e.GetType().FullName}: {e.Message}\n{e.StackTrace}");
        }
    }

    /// <summary>Values of every JSON kind that break parsers: wrong kinds, negative, huge, non-finite spellings, lone surrogates.</summary>
    public static JsonNode? HostileValue(Random r) => r.Next(16) switch
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
        13 => JsonValue.Create(new string('a', 1000)),
        14 => JsonValue.Create(-2147483649L),
        _ => JsonValue.Create("(a+)+$"),
    };

    /// <summary>Mutates a JSON document: replaces, removes or duplicates a random node; the result is serialised text (valid JSON).</summary>
    public static string MutateJson(string json, Random r)
    {
        var root = JsonNode.Parse(json);
        var nodes = new List<JsonNode>();
        void Walk(JsonNode? n)
        {
            if (n is null) return;
            nodes.Add(n);
            if (n is JsonObject o) foreach (var kv in o.ToList()) Walk(kv.Value);
            else if (n is JsonArray a) foreach (var x in a.ToList()) Walk(x);
        }
        Walk(root);
        var edits = 1 + r.Next(3);
        for (var k = 0; k < edits && nodes.Count > 1; k++)
        {
            var target = nodes[1 + r.Next(nodes.Count - 1)];
            var parent = target.Parent;
            if (parent is null) continue;
            var choice = r.Next(4);
            if (parent is JsonObject po)
            {
                var key = po.First(kv => ReferenceEquals(kv.Value, target)).Key;
                if (choice == 0) po.Remove(key);
                else po[key] = HostileValue(r);
            }
            else if (parent is JsonArray pa)
            {
                var i = pa.IndexOf(target);
                if (choice == 0) pa.RemoveAt(i);
                else if (choice == 1) pa.Add(target.DeepClone());
                else pa[i] = HostileValue(r);
            }
            nodes.Clear();
            Walk(root);
        }
        return root?.ToJsonString() ?? "null";
    }

    /// <summary>Byte-level mutation: flips, inserts, deletes or splices bytes (the result is usually invalid JSON or UTF-8).</summary>
    public static byte[] MutateBytes(byte[] data, Random r)
    {
        var list = new List<byte>(data);
        var edits = 1 + r.Next(4);
        for (var k = 0; k < edits; k++)
        {
            var pos = list.Count == 0 ? 0 : r.Next(list.Count);
            switch (r.Next(6))
            {
                case 0 when list.Count > 0: list[pos] ^= (byte)(1 << r.Next(8)); break;
                case 1: list.Insert(pos, (byte)r.Next(256)); break;
                case 2 when list.Count > 0: list.RemoveAt(pos); break;
                case 3: list.InsertRange(pos, Encoding.UTF8.GetBytes(Interesting[r.Next(Interesting.Length)])); break;
                case 4 when list.Count > 0: list.RemoveRange(pos, Math.Min(list.Count - pos, r.Next(16))); break;
                default: list.InsertRange(pos, new byte[] { 0xC3, 0x28, 0xFF, 0xED, 0xA0, 0x80 }.Take(1 + r.Next(6))); break;
            }
        }
        return list.ToArray();
    }

    private static readonly string[] Interesting =
        ["\\ud800", "\\udc00", "[[[[[[[[", "]]]]", "{\"a\":", "-1", "1e999", "NaN", "null", "\"", ",", "99999999999999999999", "\\u0000"];
}
