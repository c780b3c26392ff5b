using DeepAlign.Data;
using DeepAlign.Text;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Data;

/// <summary>The one dataset reader and writer: every field, the canonical messages form, round trips, and file:line errors.</summary>
public class JsonlDatasetTests
{
    private static IReadOnlyList<DatasetRecord> ReadText(string text) => JsonlDatasetReader.Read(new StringReader(text), "data.jsonl");

    [Fact]
    public void Reads_prompt_form_with_all_fields_and_ignores_unknown_ones()
    {
        var items = ReadText(
            "{\"id\":\"a\",\"category\":\"c\",\"system\":\"s\",\"prompt\":\"p\",\"response\":\"r\",\"harmful_response\":\"h\",\"safe_response\":\"f\",\"extra\":[1,{\"x\":2}]}\n" +
            "\n" +
            "{\"prompt\":\"only\",\"id\":7}\n");
        items.Should().HaveCount(2);
        items[0].Should().Be(new DatasetRecord
        {
            Id = "a", Category = "c", System = "s", Prompt = "p", Response = "r", HarmfulResponse = "h", SafeResponse = "f",
        });
        items[0].Location.Should().Be("data.jsonl:1");
        items[1].Prompt.Should().Be("only");
        items[1].Id.Should().Be("7", "a numeric id is kept as its text");
        items[1].Response.Should().BeNull();
        items[1].Location.Should().Be("data.jsonl:3", "blank lines count");
    }

    [Fact]
    public void Messages_with_earlier_turns_keep_the_whole_conversation_and_the_user_turn_as_prompt()
    {
        var item = JsonlDatasetReader.ParseLine(
            "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"u1\"}," +
            "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"}],\"response\":\"r\"}", "x:1");
        item.System.Should().BeNull("the system message stays inside the conversation");
        item.Prompt.Should().Be("u2");
        item.UserPrompt.Should().Be("u2");
        item.Messages!.Select(m => m.Role).Should().Equal("system", "user", "assistant", "user");
        item.PromptMessages().Should().Equal(item.Messages);

        var simple = JsonlDatasetReader.ParseLine("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"hi\"}]}", "x:2");
        simple.Prompt.Should().Be("hi");
        simple.System.Should().Be("s");
        simple.Messages.Should().BeNull("a single turn is stored as system + prompt");
        simple.PromptMessages().Should().Equal(ChatMessage.System("s"), ChatMessage.User("hi"));

        var withField = JsonlDatasetReader.ParseLine("{\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"assistant\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"u2\"}]}", "x:3");
        withField.Messages!.Select(m => m.Role).Should().Equal("system", "user", "assistant", "user");
        withField.Messages![0].Content.Should().Be("s", "the system field joins a multi-turn conversation as its first message");
    }

    [Fact]
    public void Format_then_parse_round_trips_every_form()
    {
        var plain = new DatasetRecord { Id = "x", Prompt = "say \"hi\" < > \n ok é", Response = "r", SafeResponse = "s" };
        JsonlDatasetReader.ParseLine(JsonlDatasetWriter.FormatLine(plain), "m:1").Should().Be(plain);
        JsonlDatasetWriter.FormatLine(plain).Should().Be("{\"id\":\"x\",\"prompt\":\"say \\\"hi\\\" < > \\n ok é\",\"response\":\"r\",\"safe_response\":\"s\"}");
        var multi = new DatasetRecord { Prompt = "u2", Messages = [ChatMessage.System("s"), ChatMessage.User("u1"), ChatMessage.Assistant("a1"), ChatMessage.User("u2")] };
        JsonlDatasetReader.ParseLine(JsonlDatasetWriter.FormatLine(multi), "m:2").Should().Be(multi);
        var ids = new DatasetRecord { PromptIds = [1, 2], ResponseIds = [3], Ids = [1, 2, 3], Mask = [false, false, true] };
        JsonlDatasetReader.ParseLine(JsonlDatasetWriter.FormatLine(ids), "m:3").Should().Be(ids);
        ids.Should().NotBe(ids with { Mask = [false, true, true] }, "equality compares the arrays element by element");
        plain.Should().Be(plain with { Location = "elsewhere:9" }, "the location is not part of equality");
    }

    [Fact]
    public void Chat_messages_ending_with_the_answer_read_as_prompt_and_response()
    {
        // The chat fine-tuning / TRL conversational SFT line: the last assistant message is the response.
        var single = JsonlDatasetReader.ParseLine("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}", "x:1");
        single.Should().Be(new DatasetRecord { System = "s", Prompt = "hi", Response = "hello" });
        var multi = JsonlDatasetReader.ParseLine("{\"messages\":[{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"u2\"},{\"role\":\"assistant\",\"content\":\"a2\"}],\"harmful_response\":\"h\"}", "x:2");
        multi.Messages.Should().Equal(ChatMessage.User("u1"), ChatMessage.Assistant("a1"), ChatMessage.User("u2"));
        multi.Prompt.Should().Be("u2");
        multi.Response.Should().Be("a2");
        multi.HarmfulResponse.Should().Be("h");
        // TRL's prompt-completion format, standard and conversational.
        JsonlDatasetReader.ParseLine("{\"prompt\":\"p\",\"completion\":\"c\"}", "x:3").Should().Be(new DatasetRecord { Prompt = "p", Response = "c" });
        JsonlDatasetReader.ParseLine("{\"prompt\":[{\"role\":\"user\",\"content\":\"p\"}],\"completion\":[{\"role\":\"assistant\",\"content\":\"c\"}]}", "x:4")
            .Should().Be(new DatasetRecord { Prompt = "p", Response = "c" });
    }

    [Fact]
    public void Chat_and_preference_layouts_write_the_standard_lines_and_read_back()
    {
        var record = new DatasetRecord { Id = "7", Category = "harmful/x", System = "s", Prompt = "p \"q\" é", Response = "r", HarmfulResponse = "h", SafeResponse = "no" };
        string chat = JsonlDatasetWriter.FormatLine(record, JsonlLayout.Chat);
        chat.Should().Be("{\"id\":\"7\",\"category\":\"harmful/x\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"p \\\"q\\\" é\"}," +
            "{\"role\":\"assistant\",\"content\":\"r\"}],\"harmful_response\":\"h\",\"safe_response\":\"no\"}");
        JsonlDatasetReader.ParseLine(chat, "c:1").Should().Be(record);
        var multi = new DatasetRecord { Prompt = "u2", Messages = [ChatMessage.System("s"), ChatMessage.User("u1"), ChatMessage.Assistant("a1"), ChatMessage.User("u2")], Response = "a2" };
        JsonlDatasetReader.ParseLine(JsonlDatasetWriter.FormatLine(multi, JsonlLayout.Chat), "c:2").Should().Be(multi);
        var noAnswer = new DatasetRecord { Prompt = "p" };
        JsonlDatasetWriter.FormatLine(noAnswer, JsonlLayout.Chat).Should().Be("{\"messages\":[{\"role\":\"user\",\"content\":\"p\"}]}");

        // A harmful triple becomes a DPO pair: chosen = the safe answer, rejected = the harmful one (TRL conversational).
        string pair = JsonlDatasetWriter.FormatLine(record, JsonlLayout.Preference);
        pair.Should().Be("{\"id\":\"7\",\"category\":\"harmful/x\",\"prompt\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"p \\\"q\\\" é\"}]," +
            "\"chosen\":[{\"role\":\"assistant\",\"content\":\"no\"}],\"rejected\":[{\"role\":\"assistant\",\"content\":\"h\"}]}");
        JsonlDatasetReader.ParseLine(pair, "p:1").Should().Be(new DatasetRecord { Id = "7", Category = "harmful/x", System = "s", Prompt = "p \"q\" é", Chosen = "no", Rejected = "h" });
        var explicitPair = new DatasetRecord { Prompt = "p", Chosen = "c", Rejected = "r", SafeResponse = "ignored" };
        JsonlDatasetReader.ParseLine(JsonlDatasetWriter.FormatLine(explicitPair, JsonlLayout.Preference), "p:2").Should().Be(new DatasetRecord { Prompt = "p", Chosen = "c", Rejected = "r" });

        var act = () => JsonlDatasetWriter.FormatLine(new DatasetRecord { Prompt = "p", HarmfulResponse = "h", Location = "f.csv:3" }, JsonlLayout.Preference);
        act.Should().Throw<DatasetFormatException>().WithMessage("f.csv:3: the preference layout needs \"chosen\" (or \"safe_response\")*");
        var ids = () => JsonlDatasetWriter.FormatLine(new DatasetRecord { Ids = [1], Mask = [true], Location = "t:1" }, JsonlLayout.Chat);
        ids.Should().Throw<DatasetFormatException>().WithMessage("t:1: the chat layout needs a text prompt*");
    }

    [Theory]
    [InlineData("{\"prompt\":\"ok\"}\n{\"prompt\":\"ok\"}\n{\"prompt\": oops}\n", 3, "invalid JSON")]
    [InlineData("{\"prompt\":\"ok\"}\n[1,2]\n", 2, "expected a JSON object")]
    [InlineData("{\"response\":\"r\"}\n", 1, "none of \"prompt\", \"messages\"")]
    [InlineData("\n\n{\"prompt\":5}\n", 3, "\"prompt\" must be a string")]
    [InlineData("{\"prompt\":\"p\",\"response\":[\"r\"]}\n", 1, "\"response\" must be a string")]
    [InlineData("{\"prompt\":\"p\",\"messages\":[{\"role\":\"user\",\"content\":\"u\"}]}\n", 1, "both \"prompt\" and \"messages\"")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":\"assistant\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n", 1, "must be the user turn")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":\"assistant\",\"content\":\"a\"}],\"response\":\"r\"}\n", 1, "ends with an assistant turn and the line also has \"response\"")]
    [InlineData("{\"messages\":[{\"role\":\"assistant\",\"content\":\"a\"}]}\n", 1, "holds only an assistant turn")]
    [InlineData("{\"prompt\":\"p\",\"completion\":\"c\",\"response\":\"r\"}\n", 1, "both \"completion\" and a response")]
    [InlineData("{\"prompt\":\"p\",\"completion\":[{\"role\":\"user\",\"content\":\"c\"}]}\n", 1, "must be one assistant message")]
    [InlineData("{\"messages\":[{\"role\":\"tool\",\"content\":\"u\"}]}\n", 1, "messages[0] has role 'tool'")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]}\n", 1, "messages[0] has no \"content\"")]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"u\"},{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]}\n", 1, "system message may only come first")]
    [InlineData("{\"system\":\"a\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]}\n", 1, "both \"system\" and a system message")]
    [InlineData("{\"messages\":[]}\n", 1, "\"messages\" is empty")]
    [InlineData("{\"messages\":\"hi\"}\n", 1, "\"messages\" must be an array")]
    [InlineData("{\"ids\":[1,-2],\"mask\":[0,1]}\n", 1, "\"ids\"[1] is not a non-negative integer")]
    [InlineData("{\"ids\":[1,2],\"mask\":[0]}\n", 1, "\"mask\" has 1 entries but \"ids\" has 2")]
    public void Malformed_lines_name_file_and_line(string text, int line, string problem)
    {
        var e = FluentActions.Invoking(() => ReadText(text)).Should().Throw<DatasetFormatException>().Which;
        e.Message.Should().StartWith($"data.jsonl:{line}: ").And.Contain(problem);
    }

    [Fact]
    public void Reading_a_file_names_its_path_in_errors_and_rejects_empty_files()
    {
        string dir = Directory.CreateTempSubdirectory("deepalign-jsonl-").FullName;
        try
        {
            string path = Path.Combine(dir, "bad.jsonl");
            File.WriteAllText(path, "{\"prompt\":\"a\"}\n{\"prompt\":\"b\",}\n");
            FluentActions.Invoking(() => JsonlDatasetReader.ReadFile(path)).Should().Throw<DatasetFormatException>()
                .WithMessage($"{path}:2: invalid JSON*");
            FluentActions.Invoking(() => JsonlDatasetReader.StreamFile(path).ToList()).Should().Throw<DatasetFormatException>()
                .WithMessage($"{path}:2: invalid JSON*");
            string empty = Path.Combine(dir, "empty.jsonl");
            File.WriteAllText(empty, "\n\n");
            FluentActions.Invoking(() => JsonlDatasetReader.ReadFile(empty)).Should().Throw<DatasetFormatException>().WithMessage($"{empty}: the dataset is empty.");
            FluentActions.Invoking(() => JsonlDatasetReader.StreamFile(empty).ToList()).Should().Throw<DatasetFormatException>().WithMessage($"{empty}: the dataset is empty.");
            FluentActions.Invoking(() => JsonlDatasetReader.ReadFile(Path.Combine(dir, "missing.jsonl"))).Should().Throw<FileNotFoundException>();
            FluentActions.Invoking(() => JsonlDatasetReader.StreamFile(Path.Combine(dir, "missing.jsonl"))).Should().Throw<FileNotFoundException>("before enumeration");
        }
        finally { Directory.Delete(dir, true); }
    }
}
