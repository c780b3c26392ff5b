using DeepAlign.Text.Jinja;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Text;

/// <summary>Hand-checked Jinja semantics (Python Jinja2 outputs written out by hand).</summary>
public sealed class JinjaTemplateTests
{
    private static string R(string template, params (string, object?)[] vars) =>
        new JinjaTemplate(template).Render(vars.ToDictionary(v => v.Item1, v => v.Item2), new DateTimeOffset(2025, 3, 7, 10, 0, 0, TimeSpan.Zero));

    [Theory]
    [InlineData("{{ 1 + 2 * 3 }}", "7")]
    [InlineData("{{ (1 + 2) * 3 }}", "9")]
    [InlineData("{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}", "3|-4|1|2|3.5")]
    [InlineData("{{ 'a' ~ 1 ~ true }}", "a1True")]
    [InlineData("{{ 'ab' + 'cd' }}", "abcd")]
    [InlineData("{{ not 1 == 2 }}", "True")]
    [InlineData("{{ 'b' in 'abc' }}{{ 'x' not in ['x'] }}", "TrueFalse")]
    [InlineData("{{ 'yes' if 0 else 'no' }}", "no")]
    [InlineData("{{ '  x  ' | trim }}|{{ 'a,b' .split(',') | join('-') }}", "x|a-b")]
    [InlineData("{{ [3,1,2] | sort | list }}|{{ [1,2,3][::-1] }}|{{ 'hello'[1:3] }}", "[1, 2, 3]|[3, 2, 1]|el")]
    [InlineData("{{ {'a': 1, 'b': [true, none, 'x\"y']} | tojson }}", "{\"a\": 1, \"b\": [true, null, \"x\\\"y\"]}")]
    [InlineData("{{ {'a': {'b': 1}} | tojson(indent=2) }}", "{\n  \"a\": {\n    \"b\": 1\n  }\n}")]
    [InlineData("{% for x in [1,2,3] %}{{ loop.index0 }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", "01,12,23")]
    [InlineData("{% for x in [] %}a{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1")]
    [InlineData("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}", "2")]
    [InlineData("a  {%- if true -%}  b  {%- endif -%}  c", "abc")]
    [InlineData("{# comment #}x{#- c -#}  y", "xy")]
    [InlineData("line\n    {% if true %}\n    kept\n    {% endif %}\nend\n", "line\n    kept\nend")]
    [InlineData("{{ x is defined }}{{ y is not defined }}{{ none is none }}{{ 'a' is string }}", "FalseTrueTrueTrue")]
    [InlineData("{{ strftime_now('%d %b %Y') }}", "07 Mar 2025")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{{ ['a','code','b'] | reject('equalto', 'code') | join(', ') }}", "a, b")]
    [InlineData("{% macro greet(name, p='!') %}hi {{ name }}{{ p }}{% endmacro %}{{ greet('bob') }}", "hi bob!")]
    [InlineData("{{ '\\n'.join(['a', 'b']) }}|{{ 'x\\ty' }}", "a\nb|x\ty")]
    [InlineData("{{ 'ab</think>cd'.split('</think>')[-1].lstrip('c') }}", "d")]
    public void Renders_LikePythonJinja(string template, string expected) => R(template).Should().Be(expected);

    [Fact]
    public void RaiseException_SurfacesTheMessage()
    {
        var act = () => R("{{ raise_exception('bad roles') }}");
        act.Should().Throw<JinjaException>().WithMessage("*bad roles*");
    }

    [Fact]
    public void SyntaxErrors_NameTheLine()
    {
        var act = () => new JinjaTemplate("ok\n{% if x %}never closed");
        act.Should().Throw<JinjaException>().WithMessage("*endif*");
        var act2 = () => new JinjaTemplate("a\nb\n{{ x + }}");
        act2.Should().Throw<JinjaException>().WithMessage("line 3*");
    }
}
