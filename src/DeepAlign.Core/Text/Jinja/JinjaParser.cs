using System.Globalization;

namespace DeepAlign.Text.Jinja;

/// <summary>Recursive-descent parser for the Jinja subset used by chat templates (Jinja2 operator precedence).</summary>
internal sealed class JinjaParser
{
    private readonly List<Tok> _t;
    private readonly int _maxDepth;
    private int _p;
    private int _depth;

    private JinjaParser(List<Tok> tokens, int maxDepth) { _t = tokens; _maxDepth = maxDepth; }

    public static List<Stmt> Parse(string template, JinjaLimits? limits = null)
    {
        limits ??= JinjaLimits.Default;
        if (template.Length > limits.MaxTemplateLength)
            throw new JinjaException($"the template has {template.Length} characters, more than JinjaLimits.MaxTemplateLength ({limits.MaxTemplateLength}).");
        var parser = new JinjaParser(JinjaLexer.Tokenize(template), limits.MaxNestingDepth);
        var (body, end) = parser.ParseBody();
        if (end is not null) throw new JinjaException($"line {parser.Peek.Line}: unexpected '{{% {end} %}}'.");
        return body;
    }

    /// <summary>One more level of nesting (a block, a bracket, an operator in a chain); undone by <see cref="Leave"/>.</summary>
    private void Enter()
    {
        if (++_depth > _maxDepth)
            throw new JinjaException($"line {Peek.Line}: the template nests deeper than JinjaLimits.MaxNestingDepth ({_maxDepth}).");
        System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
    }

    private void Leave(int levels = 1) => _depth -= levels;

    private Tok Peek => _t[_p];
    private Tok PeekAt(int k) => _t[Math.Min(_p + k, _t.Count - 1)];
    private Tok Next() => _t[_p++];

    private bool IsOp(string op) => Peek.Kind == TokKind.Op && Peek.Value == op;
    private bool IsName(string name) => Peek.Kind == TokKind.Name && Peek.Value == name;

    private void ExpectOp(string op)
    {
        if (!IsOp(op)) throw new JinjaException($"line {Peek.Line}: expected '{op}' but found '{Describe(Peek)}'.");
        _p++;
    }

    private void ExpectName(string name)
    {
        if (!IsName(name)) throw new JinjaException($"line {Peek.Line}: expected '{name}' but found '{Describe(Peek)}'.");
        _p++;
    }

    private string ExpectIdentifier()
    {
        if (Peek.Kind != TokKind.Name) throw new JinjaException($"line {Peek.Line}: expected a name but found '{Describe(Peek)}'.");
        return Next().Value;
    }

    private void ExpectBlockEnd()
    {
        if (Peek.Kind != TokKind.BlockEnd) throw new JinjaException($"line {Peek.Line}: expected '%}}' but found '{Describe(Peek)}'.");
        _p++;
    }

    private static string Abbreviate(string s) => s.Length <= 40 ? s : s[..40] + "...";

    private static string Describe(Tok t) => t.Kind switch
    {
        TokKind.End => "end of template",
        TokKind.String => $"'{t.Value}' (string)",
        _ => t.Value,
    };

    /// <summary>Parses statements until a block tag whose keyword is in <paramref name="endKeywords"/> (consumed: '{%' and the keyword).</summary>
    private (List<Stmt> Body, string? End) ParseBody(params string[] endKeywords)
    {
        Enter();
        try { return ParseBodyCore(endKeywords); }
        finally { Leave(); }
    }

    private (List<Stmt> Body, string? End) ParseBodyCore(string[] endKeywords)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var tok = Peek;
            switch (tok.Kind)
            {
                case TokKind.End:
                    if (endKeywords.Length > 0)
                        throw new JinjaException($"template ended before '{{% {string.Join(" / ", endKeywords)} %}}'.");
                    return (body, null);
                case TokKind.Text:
                    _p++;
                    body.Add(new TextStmt(tok.Value) { Line = tok.Line });
                    break;
                case TokKind.VarStart:
                {
                    _p++;
                    var e = ParseExpression();
                    if (Peek.Kind != TokKind.VarEnd) throw new JinjaException($"line {Peek.Line}: expected '}}}}' but found '{Describe(Peek)}'.");
                    _p++;
                    body.Add(new OutputStmt(e) { Line = tok.Line });
                    break;
                }
                case TokKind.BlockStart:
                {
                    var kw = PeekAt(1);
                    if (kw.Kind == TokKind.Name && endKeywords.Contains(kw.Value))
                    {
                        _p += 2;
                        return (body, kw.Value);
                    }
                    _p++;
                    body.Add(ParseStatement());
                    break;
                }
                default:
                    throw new JinjaException($"line {tok.Line}: unexpected '{Describe(tok)}'.");
            }
        }
    }

    private Stmt ParseStatement()
    {
        var kw = Peek;
        if (kw.Kind != TokKind.Name) throw new JinjaException($"line {kw.Line}: expected a statement keyword after '{{%' but found '{Describe(kw)}'.");
        _p++;
        switch (kw.Value)
        {
            case "if": return ParseIf(kw.Line);
            case "for": return ParseFor(kw.Line);
            case "set": return ParseSet(kw.Line);
            case "macro": return ParseMacro(kw.Line);
            case "break":
                ExpectBlockEnd();
                return new LoopControlStmt(Flow.Break) { Line = kw.Line };
            case "continue":
                ExpectBlockEnd();
                return new LoopControlStmt(Flow.Continue) { Line = kw.Line };
            default:
                throw new JinjaException($"line {kw.Line}: the Jinja statement '{{% {kw.Value} %}}' is not supported (supported: if/elif/else, for, set, macro, break, continue).");
        }
    }

    private Stmt ParseIf(int line)
    {
        var branches = new List<(Expr, List<Stmt>)>();
        var cond = ParseExpression();
        ExpectBlockEnd();
        List<Stmt>? elseBody = null;
        while (true)
        {
            var (body, end) = ParseBody("elif", "else", "endif");
            branches.Add((cond, body));
            if (end == "elif") { cond = ParseExpression(); ExpectBlockEnd(); continue; }
            if (end == "else")
            {
                ExpectBlockEnd();
                (elseBody, _) = ParseBody("endif");
            }
            ExpectBlockEnd();
            break;
        }
        return new IfStmt(branches, elseBody) { Line = line };
    }

    private Stmt ParseFor(int line)
    {
        var targets = new List<string> { ExpectIdentifier() };
        while (IsOp(",")) { _p++; targets.Add(ExpectIdentifier()); }
        ExpectName("in");
        var iterable = ParseConditional(allowIf: false);
        Expr? filter = null;
        if (IsName("if")) { _p++; filter = ParseConditional(allowIf: false); }
        if (IsName("recursive")) throw new JinjaException($"line {line}: recursive for-loops are not supported.");
        ExpectBlockEnd();
        var (body, end) = ParseBody("else", "endfor");
        List<Stmt>? elseBody = null;
        if (end == "else")
        {
            ExpectBlockEnd();
            (elseBody, _) = ParseBody("endfor");
        }
        ExpectBlockEnd();
        return new ForStmt(targets, iterable, filter, body, elseBody) { Line = line };
    }

    private Stmt ParseSet(int line)
    {
        var targets = new List<string> { ExpectIdentifier() };
        string? attribute = null;
        if (IsOp(".")) { _p++; attribute = ExpectIdentifier(); }
        while (IsOp(",")) { _p++; targets.Add(ExpectIdentifier()); }
        if (Peek.Kind == TokKind.BlockEnd)
        {
            _p++;
            var (block, _) = ParseBody("endset");
            ExpectBlockEnd();
            return new SetStmt(targets, attribute, null, block) { Line = line };
        }
        ExpectOp("=");
        var value = ParseTupleOrExpression();
        ExpectBlockEnd();
        return new SetStmt(targets, attribute, value, null) { Line = line };
    }

    private Stmt ParseMacro(int line)
    {
        var name = ExpectIdentifier();
        ExpectOp("(");
        var parameters = new List<(string, Expr?)>();
        while (!IsOp(")"))
        {
            var p = ExpectIdentifier();
            Expr? def = null;
            if (IsOp("=")) { _p++; def = ParseExpression(); }
            parameters.Add((p, def));
            if (IsOp(",")) _p++;
            else break;
        }
        ExpectOp(")");
        ExpectBlockEnd();
        var (body, _) = ParseBody("endmacro");
        ExpectBlockEnd();
        return new MacroStmt(name, parameters, body) { Line = line };
    }

    private Expr ParseTupleOrExpression()
    {
        var line = Peek.Line;
        var first = ParseExpression();
        if (!IsOp(",")) return first;
        var items = new List<Expr> { first };
        while (IsOp(",")) { _p++; items.Add(ParseExpression()); }
        return new ListExpr(items) { Line = line };
    }

    private Expr ParseExpression() => ParseConditional(allowIf: true);

    private Expr ParseConditional(bool allowIf)
    {
        Enter();
        try { return ParseConditionalCore(allowIf); }
        finally { Leave(); }
    }

    private Expr ParseConditionalCore(bool allowIf)
    {
        var line = Peek.Line;
        var expr = ParseOr();
        while (allowIf && IsName("if"))
        {
            _p++;
            var cond = ParseOr();
            Expr? otherwise = null;
            if (IsName("else")) { _p++; otherwise = ParseConditional(allowIf: true); }
            expr = new ConditionalExpr(cond, expr, otherwise) { Line = line };
        }
        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        var links = 0;
        try
        {
            while (IsName("or")) { Enter(); links++; var line = Next().Line; left = new BinaryExpr("or", left, ParseAnd()) { Line = line }; }
        }
        finally { Leave(links); }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        var links = 0;
        try
        {
            while (IsName("and")) { Enter(); links++; var line = Next().Line; left = new BinaryExpr("and", left, ParseNot()) { Line = line }; }
        }
        finally { Leave(links); }
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            Enter();
            try { var line = Next().Line; return new UnaryExpr("not", ParseNot()) { Line = line }; }
            finally { Leave(); }
        }
        return ParseCompare();
    }

    private static readonly string[] CompareOps = ["==", "!=", "<", ">", "<=", ">="];

    private Expr ParseCompare()
    {
        var left = ParseMath1();
        var links = 0;
        try
        {
            while (true)
            {
                Enter();
                links++;
                var line = Peek.Line;
            if (Peek.Kind == TokKind.Op && CompareOps.Contains(Peek.Value)) { var op = Next().Value; left = new BinaryExpr(op, left, ParseMath1()) { Line = line }; }
            else if (IsName("in")) { _p++; left = new BinaryExpr("in", left, ParseMath1()) { Line = line }; }
            else if (IsName("not") && PeekAt(1).Kind == TokKind.Name && PeekAt(1).Value == "in") { _p += 2; left = new BinaryExpr("not in", left, ParseMath1()) { Line = line }; }
            else return left;
            }
        }
        finally { Leave(links); }
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        var links = 0;
        try
        {
            while (IsOp("+") || IsOp("-")) { Enter(); links++; var t = Next(); left = new BinaryExpr(t.Value, left, ParseConcat()) { Line = t.Line }; }
        }
        finally { Leave(links); }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        var links = 0;
        try
        {
            while (IsOp("~")) { Enter(); links++; var t = Next(); left = new BinaryExpr("~", left, ParseMath2()) { Line = t.Line }; }
        }
        finally { Leave(links); }
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        var links = 0;
        try
        {
            while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) { Enter(); links++; var t = Next(); left = new BinaryExpr(t.Value, left, ParsePow()) { Line = t.Line }; }
        }
        finally { Leave(links); }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        var links = 0;
        try
        {
            while (IsOp("**")) { Enter(); links++; var t = Next(); left = new BinaryExpr("**", left, ParseUnary(withFilter: true)) { Line = t.Line }; }
        }
        finally { Leave(links); }
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Expr node;
        if (IsOp("-") || IsOp("+"))
        {
            var t = Next();
            Enter();
            try { node = new UnaryExpr(t.Value, ParseUnary(withFilter: false)) { Line = t.Line }; }
            finally { Leave(); }
        }
        else node = ParsePostfix(ParsePrimary());
        return withFilter ? ParseFilterChain(node) : node;
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokKind.String:
            {
                if (Peek.Kind != TokKind.String) return new LiteralExpr(t.Value) { Line = t.Line };
                var sb = new System.Text.StringBuilder(t.Value);
                while (Peek.Kind == TokKind.String) sb.Append(Next().Value); // adjacent literals concatenate
                return new LiteralExpr(sb.ToString()) { Line = t.Line };
            }
            case TokKind.Integer:
                return long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var integer)
                    ? new LiteralExpr(integer) { Line = t.Line }
                    : throw new JinjaException($"line {t.Line}: the integer literal {Abbreviate(t.Value)} does not fit in 64 bits.");
            case TokKind.Float:
                return double.TryParse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real)
                    ? new LiteralExpr(real) { Line = t.Line }
                    : throw new JinjaException($"line {t.Line}: the float literal {Abbreviate(t.Value)} is out of range.");
            case TokKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(true) { Line = t.Line },
                    "false" or "False" => new LiteralExpr(false) { Line = t.Line },
                    "none" or "None" => new LiteralExpr(null) { Line = t.Line },
                    _ => new NameExpr(t.Value) { Line = t.Line },
                };
            case TokKind.Op when t.Value == "(":
            {
                if (IsOp(")")) { _p++; return new ListExpr([]) { Line = t.Line }; }
                var first = ParseExpression();
                if (IsOp(","))
                {
                    var items = new List<Expr> { first };
                    while (IsOp(",")) { _p++; if (IsOp(")")) break; items.Add(ParseExpression()); }
                    ExpectOp(")");
                    return new ListExpr(items) { Line = t.Line };
                }
                ExpectOp(")");
                return first;
            }
            case TokKind.Op when t.Value == "[":
            {
                var items = new List<Expr>();
                while (!IsOp("]")) { items.Add(ParseExpression()); if (IsOp(",")) _p++; else break; }
                ExpectOp("]");
                return new ListExpr(items) { Line = t.Line };
            }
            case TokKind.Op when t.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!IsOp("}"))
                {
                    var k = ParseExpression();
                    ExpectOp(":");
                    items.Add((k, ParseExpression()));
                    if (IsOp(",")) _p++; else break;
                }
                ExpectOp("}");
                return new DictExpr(items) { Line = t.Line };
            }
            default:
                throw new JinjaException($"line {t.Line}: unexpected '{Describe(t)}' in an expression.");
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        var links = 0;
        try { return ParsePostfixCore(node, ref links); }
        finally { Leave(links); }
    }

    private Expr ParsePostfixCore(Expr node, ref int links)
    {
        while (true)
        {
            Enter();
            links++;
            var line = Peek.Line;
            if (IsOp("."))
            {
                _p++;
                var name = Peek.Kind == TokKind.Integer ? Next().Value : ExpectIdentifier();
                node = long.TryParse(name, out var idx) ? new IndexExpr(node, new LiteralExpr(idx)) { Line = line } : new AttrExpr(node, name) { Line = line };
            }
            else if (IsOp("["))
            {
                _p++;
                Expr? a = null, b = null, c = null;
                var isSlice = false;
                if (!IsOp(":")) a = ParseExpression();
                if (IsOp(":"))
                {
                    isSlice = true;
                    _p++;
                    if (!IsOp("]") && !IsOp(":")) b = ParseExpression();
                    if (IsOp(":")) { _p++; if (!IsOp("]")) c = ParseExpression(); }
                }
                ExpectOp("]");
                node = isSlice ? new SliceExpr(node, a, b, c) { Line = line } : new IndexExpr(node, a!) { Line = line };
            }
            else if (IsOp("("))
            {
                var (args, kwargs) = ParseCallArgs();
                node = new CallExpr(node, args, kwargs) { Line = line };
            }
            else return node;
        }
    }

    private (List<Expr>, List<(string, Expr)>) ParseCallArgs()
    {
        ExpectOp("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOp(")"))
        {
            if (Peek.Kind == TokKind.Name && PeekAt(1).Kind == TokKind.Op && PeekAt(1).Value == "=")
            {
                var name = Next().Value;
                _p++;
                kwargs.Add((name, ParseExpression()));
            }
            else args.Add(ParseExpression());
            if (IsOp(",")) _p++; else break;
        }
        ExpectOp(")");
        return (args, kwargs);
    }

    private static readonly HashSet<string> NotTestArgStart = ["and", "or", "else", "if", "in", "is", "not"];

    private Expr ParseFilterChain(Expr node)
    {
        var links = 0;
        try { return ParseFilterChainCore(node, ref links); }
        finally { Leave(links); }
    }

    private Expr ParseFilterChainCore(Expr node, ref int links)
    {
        while (true)
        {
            Enter();
            links++;
            var line = Peek.Line;
            if (IsOp("|"))
            {
                _p++;
                var name = ExpectIdentifier();
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (IsOp("(")) (args, kwargs) = ParseCallArgs();
                node = new FilterExpr(node, name, args, kwargs) { Line = line };
            }
            else if (IsName("is"))
            {
                _p++;
                var negate = false;
                if (IsName("not")) { _p++; negate = true; }
                var name = Peek.Kind == TokKind.Name ? Next().Value
                    : Peek.Kind == TokKind.Op && CompareOps.Contains(Peek.Value) ? Next().Value
                    : throw new JinjaException($"line {line}: expected a test name after 'is'.");
                if (name is "true" or "True") name = "true";
                if (name is "false" or "False") name = "false";
                if (name is "none" or "None") name = "none";
                var args = new List<Expr>();
                if (IsOp("(")) args = ParseCallArgs().Item1;
                else if (Peek.Kind is TokKind.String or TokKind.Integer or TokKind.Float
                         || (Peek.Kind == TokKind.Name && !NotTestArgStart.Contains(Peek.Value)))
                    args.Add(ParsePostfix(ParsePrimary()));
                node = new TestExpr(node, name, args, negate) { Line = line };
            }
            else return node;
        }
    }
}
