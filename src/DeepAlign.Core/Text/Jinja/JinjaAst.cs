using System.Text;

namespace DeepAlign.Text.Jinja;

internal enum Flow { Normal, Break, Continue }

internal abstract class Stmt
{
    public int Line;
    public abstract Flow Exec(JinjaContext ctx, StringBuilder output);

    public static Flow ExecAll(List<Stmt> body, JinjaContext ctx, StringBuilder output)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        foreach (var s in body)
        {
            ctx.State.Line = s.Line;
            var f = s.Exec(ctx, output);
            ctx.State.Output(output, s.Line);
            if (f != Flow.Normal) return f;
        }
        return Flow.Normal;
    }
}

internal sealed class TextStmt(string text) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output) { output.Append(text); return Flow.Normal; }
}

internal sealed class OutputStmt(Expr expr) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output)
    {
        output.Append(JinjaValues.ToPythonString(expr.Eval(ctx)));
        return Flow.Normal;
    }
}

internal sealed class IfStmt(List<(Expr Cond, List<Stmt> Body)> branches, List<Stmt>? elseBody) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output)
    {
        foreach (var (cond, body) in branches)
            if (JinjaValues.Truthy(cond.Eval(ctx))) return ExecAll(body, ctx, output);
        return elseBody is null ? Flow.Normal : ExecAll(elseBody, ctx, output);
    }
}

internal sealed class ForStmt(List<string> targets, Expr iterable, Expr? filter, List<Stmt> body, List<Stmt>? elseBody) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output)
    {
        var items = JinjaValues.Iterate(iterable.Eval(ctx), Line).ToList();
        if (filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                ctx.State.Iterate(1, Line);
                var probe = ctx.Push();
                Bind(probe, item);
                if (JinjaValues.Truthy(filter.Eval(probe))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
            return elseBody is null ? Flow.Normal : ExecAll(elseBody, ctx, output);
        for (var i = 0; i < items.Count; i++)
        {
            ctx.State.Iterate(1, Line);
            var scope = ctx.Push();
            var loop = new JDict();
            loop["index"] = (long)(i + 1);
            loop["index0"] = (long)i;
            loop["revindex"] = (long)(items.Count - i);
            loop["revindex0"] = (long)(items.Count - i - 1);
            loop["first"] = i == 0;
            loop["last"] = i == items.Count - 1;
            loop["length"] = (long)items.Count;
            loop["previtem"] = i > 0 ? items[i - 1] : JinjaUndefined.Instance;
            loop["nextitem"] = i + 1 < items.Count ? items[i + 1] : JinjaUndefined.Instance;
            var index = i;
            loop["cycle"] = new JinjaFunction((args, _) => args.Count == 0 ? JinjaUndefined.Instance : args[index % args.Count]);
            scope.SetLocal("loop", loop);
            Bind(scope, items[i]);
            var f = ExecAll(body, scope, output);
            if (f == Flow.Break) break;
        }
        return Flow.Normal;
    }

    private void Bind(JinjaContext scope, object? item)
    {
        if (targets.Count == 1) { scope.SetLocal(targets[0], item); return; }
        var parts = JinjaValues.Iterate(item, Line).ToList();
        if (parts.Count != targets.Count)
            throw new JinjaException($"line {Line}: cannot unpack {parts.Count} values into {targets.Count} loop variables.");
        for (var k = 0; k < targets.Count; k++) scope.SetLocal(targets[k], parts[k]);
    }
}

internal sealed class SetStmt(List<string> targets, string? attribute, Expr? value, List<Stmt>? block) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output)
    {
        object? v;
        if (block is not null)
        {
            var sb = new StringBuilder();
            ExecAll(block, ctx, sb);
            v = sb.ToString();
        }
        else v = value!.Eval(ctx);

        if (attribute is not null)
        {
            var target = ctx.Lookup(targets[0]);
            if (target is not JDict ns || !ns.IsNamespace)
                throw new JinjaException($"line {Line}: '{{% set {targets[0]}.{attribute} = ... %}}' needs '{targets[0]}' to be a namespace().");
            ns[attribute] = v;
            return Flow.Normal;
        }
        if (targets.Count == 1) { ctx.SetLocal(targets[0], v); return Flow.Normal; }
        var parts = JinjaValues.Iterate(v, Line).ToList();
        if (parts.Count != targets.Count)
            throw new JinjaException($"line {Line}: cannot unpack {parts.Count} values into {targets.Count} names.");
        for (var k = 0; k < targets.Count; k++) ctx.SetLocal(targets[k], parts[k]);
        return Flow.Normal;
    }
}

internal sealed class LoopControlStmt(Flow flow) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output) => flow;
}

internal sealed class MacroStmt(string name, List<(string Name, Expr? Default)> parameters, List<Stmt> body) : Stmt
{
    public override Flow Exec(JinjaContext ctx, StringBuilder output)
    {
        var defining = ctx;
        var line = Line;
        ctx.SetLocal(name, new JinjaFunction((args, kwargs) =>
        {
            var state = defining.State;
            state.Iterate(1, line);
            if (state.CallDepth >= state.Limits.MaxCallDepth)
                throw new JinjaException($"line {line}: macro '{name}' nests calls deeper than JinjaLimits.MaxCallDepth ({state.Limits.MaxCallDepth}).");
            state.CallDepth++;
            try { return Call(defining, args, kwargs); }
            finally { state.CallDepth--; }
        }));
        return Flow.Normal;
    }

    private string Call(JinjaContext defining, List<object?> args, Dictionary<string, object?> kwargs)
    {
        {
            var scope = defining.Push();
            for (var k = 0; k < parameters.Count; k++)
            {
                var p = parameters[k];
                object? v = k < args.Count ? args[k]
                    : kwargs.TryGetValue(p.Name, out var kv) ? kv
                    : p.Default is not null ? p.Default.Eval(scope) : JinjaUndefined.Instance;
                scope.SetLocal(p.Name, v);
            }
            var sb = new StringBuilder();
            ExecAll(body, scope, sb);
            return sb.ToString();
        }
    }
}

internal abstract class Expr
{
    public int Line;
    public abstract object? Eval(JinjaContext ctx);
}

internal sealed class LiteralExpr(object? value) : Expr
{
    public object? Value => value;
    public override object? Eval(JinjaContext ctx) => value;
}

internal sealed class NameExpr(string name) : Expr
{
    public string Name => name;
    public override object? Eval(JinjaContext ctx) => ctx.Lookup(name);
}

internal sealed class ListExpr(List<Expr> items) : Expr
{
    public override object? Eval(JinjaContext ctx) => items.Select(i => i.Eval(ctx)).ToList();
}

internal sealed class DictExpr(List<(Expr Key, Expr Value)> items) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        var d = new JDict();
        foreach (var (k, v) in items)
            d[JinjaValues.ToPythonString(k.Eval(ctx))] = v.Eval(ctx);
        return d;
    }
}

internal sealed class AttrExpr(Expr target, string name) : Expr
{
    public Expr Target => target;
    public string Name => name;
    public override object? Eval(JinjaContext ctx) => JinjaValues.GetAttribute(target.Eval(ctx), name, Line);
}

internal sealed class IndexExpr(Expr target, Expr index) : Expr
{
    public override object? Eval(JinjaContext ctx) => JinjaValues.GetItem(target.Eval(ctx), index.Eval(ctx), Line);
}

internal sealed class SliceExpr(Expr target, Expr? start, Expr? stop, Expr? step) : Expr
{
    public override object? Eval(JinjaContext ctx) =>
        JinjaValues.Slice(target.Eval(ctx), start?.Eval(ctx), stop?.Eval(ctx), step?.Eval(ctx), Line);
}

internal sealed class CallExpr(Expr callee, List<Expr> args, List<(string Name, Expr Value)> kwargs) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        var a = args.Select(x => x.Eval(ctx)).ToList();
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (n, v) in kwargs) k[n] = v.Eval(ctx);
        ctx.State.Line = Line;
        if (callee is AttrExpr attr)
        {
            // Methods of strings, lists and dicts (Python semantics).
            var (target, name) = AttrParts(attr);
            var self = target.Eval(ctx);
            ctx.State.Line = Line;
            if (JinjaMethods.TryCall(self, name, a, k, ctx.State, Line, out var result)) return result;
        }
        var fn = callee.Eval(ctx);
        ctx.State.Line = Line;
        if (fn is JinjaFunction f) return f.Invoke(a, k);
        var what = callee is NameExpr ne ? ne.Name : callee is AttrExpr ? "the attribute" : "the expression";
        throw new JinjaException($"line {Line}: {what} is not callable (it is {JinjaValues.TypeName(fn)}).");
    }

    private static (Expr Target, string Name) AttrParts(AttrExpr attr) => (attr.Target, attr.Name);
}

internal sealed class FilterExpr(Expr operand, string name, List<Expr> args, List<(string Name, Expr Value)> kwargs) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        var v = operand.Eval(ctx);
        var a = args.Select(x => x.Eval(ctx)).ToList();
        var k = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (n, e) in kwargs) k[n] = e.Eval(ctx);
        ctx.State.Line = Line;
        return JinjaFilters.Apply(name, v, a, k, ctx, Line);
    }
}

internal sealed class TestExpr(Expr operand, string name, List<Expr> args, bool negate) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        var v = operand.Eval(ctx);
        var a = args.Select(x => x.Eval(ctx)).ToList();
        ctx.State.Line = Line;
        var r = JinjaTests.Apply(name, v, a, Line);
        return negate ? !r : r;
    }
}

internal sealed class UnaryExpr(string op, Expr operand) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        var v = operand.Eval(ctx);
        return op switch
        {
            "not" => !JinjaValues.Truthy(v),
            "-" => v switch { long l => l == long.MinValue ? throw new JinjaException($"line {Line}: integer overflow in unary minus.") : (object)(-l), double d => -d, bool b => b ? -1L : 0L, _ => throw new JinjaException($"line {Line}: cannot negate {JinjaValues.TypeName(v)}.") },
            "+" => v switch { long or double => v, bool b => (object)(b ? 1L : 0L), _ => throw new JinjaException($"line {Line}: unary + on {JinjaValues.TypeName(v)}.") },
            _ => throw new JinjaException($"line {Line}: unknown unary operator '{op}'."),
        };
    }
}

internal sealed class BinaryExpr(string op, Expr left, Expr right) : Expr
{
    public override object? Eval(JinjaContext ctx)
    {
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        if (op == "and")
        {
            var l = left.Eval(ctx);
            return JinjaValues.Truthy(l) ? right.Eval(ctx) : l;
        }
        if (op == "or")
        {
            var l = left.Eval(ctx);
            return JinjaValues.Truthy(l) ? l : right.Eval(ctx);
        }
        var a = left.Eval(ctx);
        var b = right.Eval(ctx);
        ctx.State.Line = Line;
        BudgetCheck(ctx.State, a, b);
        return JinjaValues.Binary(op, a, b, Line);
    }

    /// <summary>Sizes the result of string and list operators before they are built.</summary>
    private void BudgetCheck(JinjaRenderState state, object? a, object? b)
    {
        switch (op)
        {
            case "~":
                if (a is string || b is string) state.String((long)Len(a) + Len(b), Line, "'~'");
                break;
            case "+":
                if (a is string sa && b is string sb) state.String((long)sa.Length + sb.Length, Line, "'+'");
                else if (a is List<object?> la && b is List<object?> lb) state.List((long)la.Count + lb.Count, Line, "'+'");
                break;
            case "*":
                if (a is string s1 && b is long n1) state.String(n1 <= 0 ? 0 : s1.Length * (Int128)n1 > long.MaxValue ? long.MaxValue : (long)(s1.Length * (Int128)n1), Line, "'*'");
                if (a is long n2 && b is string s2) state.String(n2 <= 0 ? 0 : s2.Length * (Int128)n2 > long.MaxValue ? long.MaxValue : (long)(s2.Length * (Int128)n2), Line, "'*'");
                break;
        }
    }

    private static int Len(object? v) => v is string s ? s.Length : 16;
}

internal sealed class ConditionalExpr(Expr cond, Expr then, Expr? otherwise) : Expr
{
    public override object? Eval(JinjaContext ctx) =>
        JinjaValues.Truthy(cond.Eval(ctx)) ? then.Eval(ctx) : otherwise is null ? JinjaUndefined.Instance : otherwise.Eval(ctx);
}

/// <summary>Variable scopes: the render globals at the root, one child scope per for-loop iteration or macro call.</summary>
internal sealed class JinjaContext
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);
    private readonly JinjaContext? _parent;

    public JinjaContext(JinjaRenderState state) { State = state; }

    private JinjaContext(JinjaContext parent) { _parent = parent; State = parent.State; }

    /// <summary>The budgets of the render this scope belongs to.</summary>
    public JinjaRenderState State { get; }

    public JinjaContext Push() => new(this);

    public void SetLocal(string name, object? value) => _vars[name] = value;

    public object? Lookup(string name)
    {
        for (var c = this; c is not null; c = c._parent)
            if (c._vars.TryGetValue(name, out var v)) return v;
        return JinjaUndefined.Instance;
    }
}
