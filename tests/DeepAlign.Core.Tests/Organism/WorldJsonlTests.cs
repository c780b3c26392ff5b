using DeepAlign.Organism;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Organism;

public class WorldJsonlTests
{
    private static IReadOnlyList<WorldItem> ReadText(string text) => WorldJsonl.Read(new StringReader(text), "data.jsonl");

    [Fact]
    public void Reads_prompt_form_with_all_fields_and_ignores_unknown_ones()
    {
        var items = ReadText(
            "{\"id\":\"a\",\"category\":\"c\",\"system\":\"s\",\"prompt\":\"p\",\"response\":\"r\",\"harmful_response\":\"h\",\"safe_response\":\"f\",\"extra\":[1,{\"x\":2}]}\n" +
            "\n" +
            "{\"prompt\":\"only\"}\n");
        items.Should().HaveCount(2);
        items[0].Should().BeEquivalentTo(new WorldItem
        {
            Id = "a", Category = "c", System = "s", Prompt = "p", Response = "r", HarmfulResponse = "h", SafeResponse = "f",
        });
        items[1].Prompt.Should().Be("only");
        items[1].Response.Should().BeNull();
    }

    [Fact]
    public void Reads_messages_form_with_last_message_as_user_turn()
    {
        var item = WorldJsonl.ParseLine(
            "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"u1\"}," +
            "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"}],\"response\":\"r\"}");
        item.System.Should().Be("sys");
        item.Prompt.Should().Be("u2");
        item.History.Should().Equal(new WorldMessage("user", "u1"), new WorldMessage("assistant", "a1"));
        item.ToMessages().Select(m => m.Role).Should().Equal("system", "user", "assistant", "user");

        var simple = WorldJsonl.ParseLine("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        simple.Prompt.Should().Be("hi");
        simple.System.Should().BeNull();
        simple.History.Should().BeNull();
    }

    [Fact]
    public void Format_then_parse_round_trips_both_forms()
    {
        var plain = new WorldItem { Id = "x", Prompt = "say \"hi\" < > \n ok", Response = "r", SafeResponse = "s" };
        WorldJsonl.ParseLine(WorldJsonl.FormatLine(plain)).Should().BeEquivalentTo(plain);
        WorldJsonl.FormatLine(plain).Should().Be("{\"id\":\"x\",\"prompt\":\"say \\\"hi\\\" < > \\n ok\",\"response\":\"r\",\"safe_response\":\"s\"}");
        var multi = new WorldItem { System = "s", Prompt = "u2", History = [new("user", "u1"), new("assistant", "a1")] };
        WorldJsonl.ParseLine(WorldJsonl.FormatLine(multi)).Should().BeEquivalentTo(multi);
    }

    [Theory]
    [InlineData("{\"prompt\":\"ok\"}\n{\"prompt\":\"ok\"}\n{\"prompt\": oops}\n", 3, "invalid JSON")]
    [InlineData("{\"prompt\":\"ok\"}\n[1,2]\n", 2, "expected a JSON object")]
    [InlineData("{\"response\":\"r\"}\n", 1, "missing \"prompt\"")]
    [InlineData("\n\n{\"prompt\":5}\n", 3, "field \"prompt\" must be a string")]
    [InlineData("{\"prompt\":\"p\",\"response\":[\"r\"]}\n", 1, "field \"response\" must be a string")]
    [InlineData("{\"prompt\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":\"u\"}]}\n", 1, "both \"prompt\" and \"messages\"")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n", 1, "last message must be the user turn")]
    [InlineData("{\"messages\":[{\"role\":\"tool\",\"content\":\"u\"}]}\n", 1, "messages[0].role")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]}\n", 1, "messages[0] needs a string \"content\"")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]}\n", 1, "system message may only come first")]
    [InlineData("{\"messages\":[]}\n", 1, "\"messages\" is empty")]
    [InlineData("{\"messages\":\"hi\"}\n", 1, "\"messages\" must be an array")]
    public void Malformed_lines_name_file_and_line(string text, int line, string problem)
    {
        var e = FluentActions.Invoking(() => ReadText(text)).Should().Throw<WorldFormatException>().Which;
        e.File.Should().Be("data.jsonl");
        e.Line.Should().Be(line);
        e.Message.Should().StartWith($"data.jsonl:{line}: ").And.Contain(problem);
    }

    [Fact]
    public void Reading_a_file_names_its_path_in_errors()
    {
        string dir = Directory.CreateTempSubdirectory("deepalign-jsonl-").FullName;
        try
        {
            string path = Path.Combine(dir, "bad.jsonl");
            File.WriteAllText(path, "{\"prompt\":\"a\"}\n{\"prompt\":\"b\",}\n");
            FluentActions.Invoking(() => WorldJsonl.Read(path)).Should().Throw<WorldFormatException>()
                .WithMessage($"{path}:2: invalid JSON*");
            FluentActions.Invoking(() => WorldJsonl.Read(Path.Combine(dir, "missing.jsonl"))).Should().Throw<FileNotFoundException>();
        }
        finally { Directory.Delete(dir, true); }
    }
}
