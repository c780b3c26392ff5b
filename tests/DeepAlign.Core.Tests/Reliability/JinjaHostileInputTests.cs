using System.Diagnostics;
using DeepAlign.Text;
using DeepAlign.Text.Jinja;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Core.Tests.Reliability;

/// <summary>
/// Chat templates are programs that come with downloaded models: every hostile template must end in a
/// <see cref="ChatTemplateException"/> naming the line, quickly, without killing the process or allocating gigabytes.
/// </summary>
public sealed class JinjaHostileInputTests
{
    private static readonly Dictionary<string, object?> NoVars = new();

    private static ChatTemplateException Fails(string template, JinjaLimits? limits = null)
    {
        var sw = Stopwatch.StartNew();
        var act = () => new JinjaTemplate(template, limits).Render(NoVars);
        var e = act.Should().Throw<ChatTemplateException>().Which;
        sw.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20), "every budget is checked before the work is done");
        return e;
    }

    [Fact]
    public void Recursive_macro_stops_at_the_call_depth_budget_instead_of_overflowing_the_stack()
    {
        var e = Fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}");
        e.Message.Should().Contain("MaxCallDepth").And.Contain("line 1");
        e.Line.Should().Be(1);
    }

    [Fact]
    public void Doubly_recursive_macro_stops_at_the_iteration_budget()
    {
        // Depth 30 is within the call-depth budget, but 2^30 calls are not.
        var e = Fails("{% macro f(n) %}{% if n < 30 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}");
        e.Message.Should().Contain("MaxIterations");
    }

    [Theory]
    [InlineData("(", ")")]
    [InlineData("[", "]")]
    [InlineData("{'a': ", "}")]
    [InlineData("-", "")]
    [InlineData("not ", "")]
    public void Ten_thousand_nested_brackets_hit_the_nesting_limit(string open, string close)
    {
        var t = "{{ " + string.Concat(Enumerable.Repeat(open, 10_000)) + "1" + string.Concat(Enumerable.Repeat(close, 10_000)) + " }}";
        var act = () => new JinjaTemplate(t);
        act.Should().Throw<ChatTemplateException>().WithMessage("*MaxNestingDepth*");
    }

    [Fact]
    public void Ten_thousand_nested_blocks_and_long_operator_chains_hit_the_nesting_limit()
    {
        var blocks = string.Concat(Enumerable.Repeat("{% if true %}", 10_000)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", 10_000));
        ((Action)(() => _ = new JinjaTemplate(blocks))).Should().Throw<ChatTemplateException>().WithMessage("*MaxNestingDepth*");
        var chain = "{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 100_000)) + " }}";
        ((Action)(() => _ = new JinjaTemplate(chain))).Should().Throw<ChatTemplateException>().WithMessage("*MaxNestingDepth*");
    }

    [Fact]
    public void Values_nested_a_million_deep_at_render_time_fail_typed_not_with_a_stack_overflow()
    {
        // The list nesting grows inside the loop; printing it recurses once per level.
        var t = "{% set ns = namespace(x=[]) %}{% for i in range(1000000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}";
        var e = Fails(t);
        e.Line.Should().NotBeNull();
    }

    [Theory]
    [InlineData("{{ range(10**9) | length }}", "MaxRangeLength")]
    [InlineData("{% for i in range(10**9) %}{% endfor %}", "MaxRangeLength")]
    [InlineData("{{ 'a' * 10**9 }}", "MaxStringLength")]
    [InlineData("{{ 'x' | indent(10**9, true) }}", "MaxStringLength")]
    [InlineData("{{ 'aaaa' | replace('a', 'b' * 10000000) }}", "MaxStringLength")]
    [InlineData("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "MaxStringLength")]
    [InlineData("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "MaxRangeLength")]
    [InlineData("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}", "MaxIterations")]
    [InlineData("{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}", "MaxOutputLength")]
    [InlineData("{{ [[[[[[1]]]]]] | tojson(indent=4000000) }}", "MaxStringLength")]
    public void Budgets_stop_huge_work_before_it_is_done(string template, string limit)
    {
        var limits = new JinjaLimits { MaxOutputLength = 10_000_000 };
        var e = Fails(template, limits);
        e.Message.Should().Contain(limit).And.StartWith("line 1:");
    }

    [Fact]
    public void Budgets_are_configurable()
    {
        var t = "{% for i in range(50) %}x{% endfor %}";
        new JinjaTemplate(t).Render(NoVars).Should().HaveLength(50);
        Fails(t, new JinjaLimits { MaxIterations = 10 }).Message.Should().Contain("MaxIterations");
        ((Action)(() => _ = new JinjaTemplate(t, new JinjaLimits { MaxCallDepth = 0 }))).Should().Throw<ArgumentException>().WithMessage("*MaxCallDepth*");
    }

    [Theory]
    [InlineData("{{ 99999999999999999999999 }}", "64 bits")]
    [InlineData("{{ 9223372036854775807 + 1 }}", "overflow")]
    [InlineData("{{ -9223372036854775807 - 2 }}", "overflow")]
    [InlineData("{{ 3037000500 * 3037000500 }}", "overflow")]
    [InlineData("{{ 2 ** 64 }}", "overflow")]
    [InlineData("{{ range(10.0 ** 300) }}", "64-bit")]
    [InlineData("{{ 'abc'.replace(1, 2) }}", "needs a string")]
    [InlineData("{{ [1,2] | selectattr(1) }}", "needs a string")]
    [InlineData("{{ 3 is divisibleby }}", "needs an argument")]
    [InlineData("{{ 3 is divisibleby(0) }}", "divisibleby(0)")]
    [InlineData("{{ range() }}", "range()")]
    [InlineData("{{ 'abc'.split('') }}", "empty separator")]
    [InlineData("{{ 'abc' | tojson(separators=[1, 2]) }}", "needs a string")]
    [InlineData("{{ strftime_now('%Q') }}", "%Q")]
    [InlineData("{% include 'x' %}", "include")]
    public void Wrong_values_and_arguments_give_a_located_ChatTemplateException(string template, string fragment)
    {
        var e = Fails(template);
        e.Message.Should().Contain(fragment).And.Contain("line 1");
        e.Line.Should().Be(1);
    }

    [Theory]
    [InlineData("{{ 'abcdef'[::9223372036854775807] }}", "a")]
    [InlineData("{{ 'abcdef'[::-9223372036854775807] }}", "f")]
    [InlineData("{{ 'abcdef'[-9223372036854775807:9223372036854775807] }}", "abcdef")]
    [InlineData("{{ [1,2,3][9223372036854775807:] }}", "[]")]
    [InlineData("{{ 7 // -2 }} {{ -7 % 3 }} {{ 5 % -1 }}", "-4 2 0")]
    [InlineData("{{ 2 ** 62 }}", "4611686018427387904")]
    public void Extreme_slices_and_integer_edges_compute_python_results(string template, string expected)
    {
        new JinjaTemplate(template).Render(NoVars).Should().Be(expected);
    }

    [Fact]
    public void Errors_name_the_origin_file_and_line()
    {
        var act = () => new JinjaTemplate("ok\n{{ x.y.z }}", null, "model/tokenizer_config.json: chat_template").Render(NoVars);
        var e = act.Should().Throw<ChatTemplateException>().Which;
        e.Message.Should().StartWith("model/tokenizer_config.json: chat_template: line 2:");
        e.Line.Should().Be(2);
        e.Origin.Should().Be("model/tokenizer_config.json: chat_template");
    }

    [Fact]
    public void A_template_longer_than_the_limit_is_refused()
    {
        var act = () => new JinjaTemplate(new string('x', 101), new JinjaLimits { MaxTemplateLength = 100 });
        act.Should().Throw<ChatTemplateException>().WithMessage("*MaxTemplateLength*");
    }
}
