using DeepAlign.Text;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

/// <summary>Preference lines (TRL's forms and harmful triples), the pair builder and the pair layout of the collator.</summary>
public sealed class PreferenceDataTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "deepalign-pref-" + Guid.NewGuid().ToString("N"));

    public PreferenceDataTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private string Write(params string[] lines)
    {
        var path = Path.Combine(_dir, $"d{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>system -> 100, user -> 101, assistant -> 103, each followed by its first character; the generation header 102. Responses: characters, then 999.</summary>
    private sealed class FakeEncoder : IConversationEncoder
    {
        public long[] EncodePrompt(IReadOnlyList<ChatMessage> messages) =>
            messages.SelectMany(m => new long[] { m.Role switch { "system" => 100, "user" => 101, _ => 103 }, m.Content[0] }).Append(102).ToArray();
        public long[] EncodeResponse(string response, bool appendEndOfTurn) =>
            response.Select(c => (long)c).Concat(appendEndOfTurn ? new long[] { 999 } : Array.Empty<long>()).ToArray();
    }

    private static TrainingExample Build(string path, int line = 0, bool appendEndOfTurn = true) =>
        new PreferenceExampleBuilder(new FakeEncoder(), appendEndOfTurn).Build(JsonlDatasetReader.ReadFile(path)[line], new Random(0));

    private static void AssertPair(TrainingExample e, long[] prompt, string chosen, string rejected)
    {
        long[] Seq(string r) => prompt.Concat(r.Select(c => (long)c)).Append(999).ToArray();
        e.Ids.Should().Equal(Seq(chosen));
        e.ResponseStart.Should().Be(prompt.Length);
        e.Targets.Should().Equal(Enumerable.Range(0, e.Ids.Length).Select(i => i >= prompt.Length), "every chosen token and the end of turn are targets");
        e.Rejected.Should().NotBeNull();
        e.Rejected!.Ids.Should().Equal(Seq(rejected));
        e.Rejected.ResponseStart.Should().Be(prompt.Length);
        e.Rejected.Targets.Should().Equal(Enumerable.Range(0, e.Rejected.Ids.Length).Select(i => i >= prompt.Length));
        e.Rejected.Rejected.Should().BeNull();
    }

    [Fact]
    public void Trl_standard_line_prompt_chosen_rejected()
    {
        var path = Write("{\"prompt\": \"P\", \"chosen\": \"ab\", \"rejected\": \"xyz\"}");
        var r = JsonlDatasetReader.ReadFile(path)[0];
        r.Chosen.Should().Be("ab");
        r.Rejected.Should().Be("xyz");
        AssertPair(Build(path), new long[] { 101, 'P', 102 }, "ab", "xyz");
    }

    [Fact]
    public void Messages_line_with_chosen_and_rejected()
    {
        var path = Write("{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"Q\"}], \"chosen\": \"ok\", \"rejected\": \"no\"}");
        AssertPair(Build(path), new long[] { 100, 'S', 101, 'Q', 102 }, "ok", "no");
    }

    [Fact]
    public void Trl_conversational_line_with_explicit_prompt()
    {
        var path = Write("{\"prompt\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"Q\"}], " +
                         "\"chosen\": [{\"role\": \"assistant\", \"content\": \"good\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"bad\"}]}");
        var r = JsonlDatasetReader.ReadFile(path)[0];
        // The canonical form of a single-turn conversation: system + prompt (see JsonlDatasetTests).
        (r.System, r.Prompt, r.Messages).Should().Be(("S", "Q", (IReadOnlyList<ChatMessage>?)null));
        r.PromptMessages().Should().Equal(new ChatMessage("system", "S"), new ChatMessage("user", "Q"));
        AssertPair(Build(path), new long[] { 100, 'S', 101, 'Q', 102 }, "good", "bad");
    }

    [Fact]
    public void Trl_conversational_line_with_implicit_prompt_takes_the_shared_turns()
    {
        var path = Write("{\"chosen\": [{\"role\": \"user\", \"content\": \"U1\"}, {\"role\": \"assistant\", \"content\": \"A1\"}, {\"role\": \"user\", \"content\": \"U2\"}, {\"role\": \"assistant\", \"content\": \"yes\"}], " +
                         "\"rejected\": [{\"role\": \"user\", \"content\": \"U1\"}, {\"role\": \"assistant\", \"content\": \"A1\"}, {\"role\": \"user\", \"content\": \"U2\"}, {\"role\": \"assistant\", \"content\": \"nope\"}]}");
        AssertPair(Build(path), new long[] { 101, 'U', 103, 'A', 101, 'U', 102 }, "yes", "nope");
    }

    [Fact]
    public void Harmful_line_chooses_the_safe_response_over_the_harmful_one()
    {
        var path = Write("{\"id\": \"h1\", \"prompt\": \"P\", \"harmful_response\": \"evil\", \"safe_response\": \"nice\"}");
        var e = Build(path);
        AssertPair(e, new long[] { 101, 'P', 102 }, "nice", "evil");
        e.Id.Should().Be("h1");
        e.Location.Should().Be($"{path}:1");
    }

    [Fact]
    public void Pretokenized_line_and_end_of_turn_switch()
    {
        var path = Write("{\"prompt_ids\": [1, 2, 3], \"chosen_ids\": [4, 5], \"rejected_ids\": [6]}");
        var e = new PreferenceExampleBuilder().Build(JsonlDatasetReader.ReadFile(path)[0], new Random(0));
        e.Ids.Should().Equal(1, 2, 3, 4, 5);
        e.Targets.Should().Equal(false, false, false, true, true);
        e.Rejected!.Ids.Should().Equal(1, 2, 3, 6);
        e.Rejected.Targets.Should().Equal(false, false, false, true);

        var text = Write("{\"prompt\": \"P\", \"chosen\": \"ab\", \"rejected\": \"c\"}");
        var noEot = Build(text, appendEndOfTurn: false);
        noEot.Ids.Should().Equal(101, 'P', 102, 'a', 'b');
        noEot.Rejected!.Ids.Should().Equal(101, 'P', 102, 'c');
    }

    [Theory]
    [InlineData("{\"prompt\": \"P\", \"chosen\": 3, \"rejected\": \"x\"}", "*\"chosen\" must be a string or a list of messages*")]
    [InlineData("{\"prompt\": \"P\", \"chosen\": [{\"role\": \"user\", \"content\": \"a\"}], \"rejected\": \"x\"}", "*last of \"chosen\" must be the assistant turn*")]
    [InlineData("{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": [{\"role\": \"assistant\"}]}", "*rejected[0] has no \"content\"*")]
    [InlineData("{\"chosen\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"DIFFERENT\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}", "*must share every message before their last*")]
    [InlineData("{\"prompt\": \"P\", \"chosen\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}], \"rejected\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}", "*implicit prompt*also has a prompt*")]
    [InlineData("{\"chosen\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}], \"rejected\": \"c\"}", "*both \"chosen\" and \"rejected\" must be conversations*")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"chosen\": \"b\", \"rejected\": \"c\"}", "*both \"messages\" and a conversational \"prompt\"*")]
    [InlineData("{\"system\": \"S\", \"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"chosen\": \"b\", \"rejected\": \"c\"}", "*\"system\" cannot be combined*")]
    [InlineData("{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}], \"chosen\": \"b\", \"rejected\": \"c\"}", "*last of \"messages\" must be the user turn*")]
    [InlineData("{\"prompt_ids\": [1], \"chosen_ids\": [2, -1], \"rejected_ids\": [3]}", "*\"chosen_ids\"[1] is not a non-negative integer*")]
    public void Malformed_preference_lines_name_the_file_and_line_when_read(string bad, string message)
    {
        var path = Write("{\"prompt\": \"fine\", \"chosen\": \"a\", \"rejected\": \"b\"}", "", bad);
        var act = () => JsonlDatasetReader.ReadFile(path);
        act.Should().Throw<DatasetFormatException>().WithMessage($"{path}:3:*{message.Trim('*')}*");
    }

    [Theory]
    [InlineData("{\"prompt\": \"P\", \"chosen\": \"a\"}", "*the preference line has no \"rejected\" (nor \"rejected_ids\")*")]
    [InlineData("{\"prompt\": \"P\", \"rejected_ids\": [3]}", "*the preference line has no \"chosen\"*")]
    [InlineData("{\"prompt\": \"P\", \"safe_response\": \"a\"}", "*needs \"chosen\" and \"rejected\" (or a harmful line's \"safe_response\" and \"harmful_response\"); \"harmful_response\" is missing*")]
    [InlineData("{\"prompt\": \"P\", \"response\": \"a\"}", "*\"safe_response\" is missing*")]
    [InlineData("{\"prompt_ids\": [1], \"chosen_ids\": [], \"rejected_ids\": [3]}", "*\"chosen\" has no tokens*")]
    [InlineData("{\"ids\": [1, 2], \"mask\": [0, 1]}", "*cannot be given as \"ids\" + \"mask\"*")]
    public void Lines_that_are_not_pairs_fail_when_the_data_is_loaded_with_file_and_line(string bad, string message)
    {
        var path = Write("{\"prompt\": \"fine\", \"chosen\": \"a\", \"rejected\": \"b\"}", bad);
        var act = () => TrainingData.Single(JsonlDatasetReader.ReadFile(path), new PreferenceExampleBuilder(new FakeEncoder()), 0);
        act.Should().Throw<DatasetFormatException>().WithMessage($"{path}:2:*{message.Trim('*')}*");
    }

    [Fact]
    public void Text_pairs_without_an_encoder_say_so()
    {
        var path = Write("{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}");
        var act = () => TrainingData.Single(JsonlDatasetReader.ReadFile(path), new PreferenceExampleBuilder(), 0);
        act.Should().Throw<DatasetFormatException>().WithMessage($"{path}:1:*no tokenizer*");
    }

    [Fact]
    public void Collator_keeps_each_pair_in_the_batch_chosen_rows_first_and_pads_on_the_right()
    {
        var b1 = new PreferenceExampleBuilder();
        var p1 = b1.Build(new DatasetRecord { PromptIds = new long[] { 1, 2 }, ChosenIds = new long[] { 3, 4, 5 }, RejectedIds = new long[] { 6 }, Location = "a:1" }, new Random(0)) with { Source = "pref" };
        var p2 = b1.Build(new DatasetRecord { PromptIds = new long[] { 7 }, ChosenIds = new long[] { 8 }, RejectedIds = new long[] { 9, 10, 11, 12 }, Location = "a:2" }, new Random(0)) with { Source = "pref" };
        using var b = BatchCollator.Collate(new[] { p1, p2 }, padId: 0, CPU);
        b.PreferencePairs.Should().Be(2);
        b.Size.Should().Be(4);
        b.Length.Should().Be(5);
        b.InputIds.data<long>().ToArray().Should().Equal(
            1, 2, 3, 4, 5,
            7, 8, 0, 0, 0,
            1, 2, 6, 0, 0,
            7, 9, 10, 11, 12);
        b.AttentionMask.data<long>().ToArray().Should().Equal(1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1);
        b.TargetMask.data<bool>().ToArray().Should().Equal(
            false, false, true, true, true,
            false, true, false, false, false,
            false, false, true, false, false,
            false, true, true, true, true);
        b.Examples.Select(e => e.Source).Should().OnlyContain(s => s == "pref", "the rejected rows carry their pair's source");
        b.Examples[2].Ids.Should().Equal(p1.Rejected!.Ids);
        b.TargetCount.Should().Be(3 + 1 + 1 + 4);

        using var cut = BatchCollator.Collate(new[] { p1, p2 }, 0, CPU, maxLength: 3);
        cut.PreferencePairs.Should().Be(2);
        cut.Length.Should().Be(3);
        cut.TargetCount.Should().Be(1 + 1 + 1 + 2, "both sequences of a pair are cut to the maximum length");

        var single = new TrainingExample { Ids = new long[] { 1, 2 }, Targets = new[] { false, true }, ResponseStart = 1 };
        var mixed = () => BatchCollator.Collate(new[] { p1, single }, 0, CPU);
        mixed.Should().Throw<ArgumentException>().WithMessage("*cannot mix preference pairs (1) with single sequences (1)*");
        using var plain = BatchCollator.Collate(new[] { single }, 0, CPU);
        plain.PreferencePairs.Should().Be(0);
    }

    [Fact]
    public void The_mixer_tags_pairs_and_a_rejected_sequence_is_validated_with_its_pair()
    {
        var path = Write("{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}", "{\"prompt_ids\": [4], \"chosen_ids\": [5], \"rejected_ids\": [6]}");
        var data = new TrainingData(new[] { new DataSource("prefs", JsonlDatasetReader.ReadFile(path), new PreferenceExampleBuilder(), Shuffle: false) }, 0);
        var two = data.Next(2);
        two.Select(e => e.Ids[1]).Should().Equal(2, 5);
        using var b = BatchCollator.Collate(two, 0, CPU);
        b.Examples.Select(e => e.Source).Should().Equal("prefs", "prefs", "prefs", "prefs");

        var broken = new TrainingExample
        {
            Ids = new long[] { 1, 2 }, Targets = new[] { false, true }, ResponseStart = 1, Location = "x:9",
            Rejected = new TrainingExample { Ids = new long[] { 1, 3 }, Targets = new[] { false }, ResponseStart = 1, Location = "x:9" },
        };
        var act = () => broken.Validate();
        act.Should().Throw<DatasetFormatException>().WithMessage("x:9: the target mask has 1 entries but there are 2 ids.");
    }
}
