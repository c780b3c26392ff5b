using System.Text;

namespace DeepAlign.Text.Jinja;

/// <summary>The budgets of one render, shared by every scope of it (see <see cref="JinjaLimits"/>).</summary>
internal sealed class JinjaRenderState(JinjaLimits limits)
{
    public JinjaLimits Limits { get; } = limits;

    /// <summary>The template line being evaluated (for errors raised by helpers that do not know it).</summary>
    public int Line;

    public int CallDepth;

    private long _iterations;
    private long _stringWork;

    public void Iterate(long count, int line)
    {
        _iterations += count;
        if (_iterations > Limits.MaxIterations)
            throw new JinjaException($"line {line}: the template exceeded its budget of {Limits.MaxIterations} loop iterations, macro calls and filter steps (JinjaLimits.MaxIterations).");
    }

    /// <summary>Checks a string of <paramref name="length"/> characters before it is built.</summary>
    public void String(long length, int line, string what)
    {
        if (length > Limits.MaxStringLength)
            throw new JinjaException($"line {line}: {what} would build a string of {length} characters, more than JinjaLimits.MaxStringLength ({Limits.MaxStringLength}).");
        _stringWork += length;
        if (_stringWork > Limits.MaxStringWork)
            throw new JinjaException($"line {line}: the template exceeded its budget of {Limits.MaxStringWork} characters of string building (JinjaLimits.MaxStringWork).");
    }

    /// <summary>Checks a list of <paramref name="count"/> items before it is built.</summary>
    public void List(long count, int line, string what)
    {
        if (count > Limits.MaxRangeLength)
            throw new JinjaException($"line {line}: {what} would build a list of {count} items, more than JinjaLimits.MaxRangeLength ({Limits.MaxRangeLength}).");
        Iterate(count, line);
    }

    public void Output(StringBuilder sb, int line)
    {
        if (sb.Length > Limits.MaxOutputLength)
            throw new JinjaException($"line {line}: the rendered output exceeds JinjaLimits.MaxOutputLength ({Limits.MaxOutputLength} characters).");
    }
}
