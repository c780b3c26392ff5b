using System.Text;
using System.Text.RegularExpressions;

namespace DeepAlign.Text.Jinja;

/// <summary>
/// A compiled Jinja template, for Hugging Face chat templates. Supports the subset the official templates use:
/// if/elif/else, for (with loop.*, else, filters and tuple unpacking), set (also namespace attributes and block
/// set), macro, break/continue, whitespace control, comments, Python string/list/dict methods, filters
/// (trim, tojson, length, join, map, select/reject(attr), default, items, ...), tests and the globals
/// raise_exception, range, namespace, dict and strftime_now. Environment settings are transformers':
/// trim_blocks and lstrip_blocks on, one trailing newline dropped. Anything else throws
/// <see cref="ChatTemplateException"/> naming the construct. Parsing and rendering are bounded by
/// <see cref="JinjaLimits"/> (nesting, macro call depth, loop iterations, list, string and output sizes), so an
/// untrusted template cannot crash, hang or exhaust memory; every failure is a <see cref="ChatTemplateException"/>
/// with the template line (docs/reliability.md).
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Stmt> _body;

    /// <summary>Parses <paramref name="source"/> with the default limits.</summary>
    /// <exception cref="ChatTemplateException">The template has a syntax error, uses a construct outside the supported subset or exceeds a limit.</exception>
    public JinjaTemplate(string source) : this(source, null, null) { }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <param name="source">The template text.</param>
    /// <param name="limits">Parse and render budgets; null: <see cref="JinjaLimits.Default"/>.</param>
    /// <param name="origin">Where the template came from (e.g. <c>model/tokenizer_config.json: chat_template</c>), prefixed to error messages; null: none.</param>
    /// <exception cref="ChatTemplateException">The template has a syntax error, uses a construct outside the supported subset or exceeds a limit.</exception>
    public JinjaTemplate(string source, JinjaLimits? limits, string? origin = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        Limits = limits ?? JinjaLimits.Default;
        Limits.Validate();
        Source = source;
        Origin = origin;
        _body = Guard(null, () => JinjaParser.Parse(source, Limits));
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>The parse and render budgets.</summary>
    public JinjaLimits Limits { get; }

    /// <summary>Where the template came from, for error messages (null when not given).</summary>
    public string? Origin { get; }

    /// <summary>
    /// Runs the parser or renderer and turns every failure into a <see cref="ChatTemplateException"/> that names the
    /// origin and the line (the engine's own errors already carry the line; others take the line being evaluated).
    /// </summary>
    private T Guard<T>(JinjaRenderState? state, Func<T> body)
    {
        try
        {
            return body();
        }
        catch (ChatTemplateException e)
        {
            var line = e.Line ?? (state?.Line is int l && l > 0 ? l : null);
            if (Origin is null && e.Line == line) throw;
            var at = e.Line is null && line is int n ? $"line {n}: " : "";
            var message = $"{(Origin is null ? "" : Origin + ": ")}{at}{e.Message}";
            throw e is JinjaException ? new JinjaException(message, line, e) { Origin = Origin } : new ChatTemplateException(message, line, e) { Origin = Origin };
        }
        catch (Exception e) when (e is InsufficientExecutionStackException or InvalidCastException or NullReferenceException
                                      or ArgumentException or IndexOutOfRangeException or KeyNotFoundException or OverflowException
                                      or FormatException or NotSupportedException or InvalidOperationException or RegexMatchTimeoutException)
        {
            var line = state?.Line;
            var what = e switch
            {
                InsufficientExecutionStackException => "the template nests too deeply to evaluate",
                InvalidCastException or NullReferenceException => "an argument has the wrong type or is missing",
                IndexOutOfRangeException or ArgumentOutOfRangeException => "an argument is missing or out of range",
                RegexMatchTimeoutException => "preprocessing the template timed out",
                _ => e.Message,
            };
            var at = line is int l && l > 0 ? $"line {l}: " : "";
            throw new ChatTemplateException($"{(Origin is null ? "" : Origin + ": ")}{at}{what}.", line, e) { Origin = Origin };
        }
    }

    /// <summary>
    /// Renders the template. Values may be strings, booleans, numbers, null, lists, string-keyed dictionaries,
    /// <see cref="System.Text.Json.JsonElement"/> or <see cref="ChatMessage"/>.
    /// </summary>
    /// <param name="variables">The template variables.</param>
    /// <param name="now">The clock read by strftime_now(); null means the current UTC time.</param>
    /// <exception cref="ChatTemplateException">Rendering failed, exceeded a limit, or the template called raise_exception (the message says which).</exception>
    /// <exception cref="ArgumentException">A variable has a type that cannot be passed to a template.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, DateTimeOffset? now = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        // Caller-supplied values are converted first: a value of an unsupported type is the caller's ArgumentException.
        var converted = new List<(string, object?)>(variables.Count);
        foreach (var (k, v) in variables) converted.Add((k, JinjaValues.FromDotNet(v)));
        var state = new JinjaRenderState(Limits);
        return Guard(state, () => RenderCore(converted, now, state));
    }

    private string RenderCore(List<(string Name, object? Value)> variables, DateTimeOffset? now, JinjaRenderState state)
    {
        var globals = new JinjaContext(state);
        globals.SetLocal("raise_exception", new JinjaFunction((a, _) =>
            throw new JinjaException($"The chat template raised an exception: {(a.Count > 0 ? JinjaValues.ToPythonString(a[0]) : "")}")));
        globals.SetLocal("range", new JinjaFunction((a, _) =>
        {
            var line = state.Line;
            long start = 0, stop, step = 1;
            if (a.Count == 0 || a.Count > 3) throw new JinjaException($"line {line}: range() takes 1 to 3 arguments, got {a.Count}.");
            if (a.Count == 1) stop = JinjaValues.ToLong(a[0], line);
            else { start = JinjaValues.ToLong(a[0], line); stop = JinjaValues.ToLong(a[1], line); if (a.Count > 2) step = JinjaValues.ToLong(a[2], line); }
            if (step == 0) throw new JinjaException($"line {line}: range() step must not be zero.");
            Int128 span = step > 0 ? (Int128)stop - start : (Int128)start - stop;
            Int128 stride = step > 0 ? step : -(Int128)step;
            var count = span <= 0 ? 0 : (span + stride - 1) / stride;
            state.List(count > long.MaxValue ? long.MaxValue : (long)count, line, "range()");
            var r = new List<object?>((int)count);
            for (long k = 0; k < (long)count; k++) r.Add((long)(start + (Int128)k * step));
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
        foreach (var (k, v) in variables) scope.SetLocal(k, v);
        var sb = new StringBuilder();
        Stmt.ExecAll(_body, scope, sb);
        state.Output(sb, state.Line);
        return sb.ToString();
    }
}
