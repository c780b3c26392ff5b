using System.Text;

namespace DeepAlign.Text.Jinja;

/// <summary>
/// A compiled Jinja template, for Hugging Face chat templates. Supports the subset the official templates use:
/// if/elif/else, for (with loop.*, else, filters and tuple unpacking), set (also namespace attributes and block
/// set), macro, break/continue, whitespace control, comments, Python string/list/dict methods, filters
/// (trim, tojson, length, join, map, select/reject(attr), default, items, ...), tests and the globals
/// raise_exception, range, namespace, dict and strftime_now. Environment settings are transformers':
/// trim_blocks and lstrip_blocks on, one trailing newline dropped. Anything else throws
/// <see cref="NotSupportedException"/> naming the construct.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Stmt> _body;

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="JinjaException">The template has a syntax error.</exception>
    /// <exception cref="NotSupportedException">The template uses a statement outside the supported subset.</exception>
    public JinjaTemplate(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        Source = source;
        _body = JinjaParser.Parse(source);
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>
    /// Renders the template. Values may be strings, booleans, numbers, null, lists, string-keyed dictionaries,
    /// <see cref="System.Text.Json.JsonElement"/> or <see cref="ChatMessage"/>.
    /// </summary>
    /// <param name="variables">The template variables.</param>
    /// <param name="now">The clock read by strftime_now(); null means the current UTC time.</param>
    /// <exception cref="JinjaException">Rendering failed or the template called raise_exception (the message says which).</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, DateTimeOffset? now = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var globals = new JinjaContext();
        globals.SetLocal("raise_exception", new JinjaFunction((a, _) =>
            throw new JinjaException($"The chat template raised an exception: {(a.Count > 0 ? JinjaValues.ToPythonString(a[0]) : "")}")));
        globals.SetLocal("range", new JinjaFunction((a, _) =>
        {
            long start = 0, stop, step = 1;
            if (a.Count == 1) stop = JinjaValues.ToLong(a[0]);
            else { start = JinjaValues.ToLong(a[0]); stop = JinjaValues.ToLong(a[1]); if (a.Count > 2) step = JinjaValues.ToLong(a[2]); }
            if (step == 0) throw new JinjaException("range() step must not be zero.");
            var r = new List<object?>();
            for (var i = start; step > 0 ? i < stop : i > stop; i += step) r.Add(i);
            return r;
        }));
        globals.SetLocal("namespace", new JinjaFunction((a, k) =>
        {
            var ns = new JDict { IsNamespace = true };
            foreach (var d in a.OfType<JDict>()) foreach (var kv in d) ns[kv.Key] = kv.Value;
            foreach (var kv in k) ns[kv.Key] = kv.Value;
            return ns;
        }));
        globals.SetLocal("dict", new JinjaFunction((a, k) =>
        {
            var d = new JDict();
            foreach (var kv in k) d[kv.Key] = kv.Value;
            return d;
        }));
        var clock = now;
        globals.SetLocal("strftime_now", new JinjaFunction((a, _) =>
            PyStrftime.Format(clock ?? DateTimeOffset.UtcNow, a.Count > 0 ? JinjaValues.ToPythonString(a[0]) : "")));
        var scope = globals.Push();
        foreach (var (k, v) in variables) scope.SetLocal(k, JinjaValues.FromDotNet(v));
        var sb = new StringBuilder();
        Stmt.ExecAll(_body, scope, sb);
        return sb.ToString();
    }
}
