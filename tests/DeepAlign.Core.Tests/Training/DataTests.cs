using DeepAlign.Text;
using System.Text.Json;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Training;

public sealed class DataTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "deepalign-data-" + Guid.NewGuid().ToString("N"));

    public DataTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private string Write(string name, params string[] lines)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    private static IReadOnlyList<DatasetRecord> Numbered(int n, string tag) =>
        Enumerable.Range(0, n).Select(i => new DatasetRecord { Id = $"{tag}{i}", PromptIds = new long[] { 1, 2 }, ResponseIds = new long[] { 3 + i }, Location = $"{tag}:{i + 1}" }).ToArray();

    [Fact]
    public void Malformed_lines_name_the_file_and_line()
    {
        var bad = Write("bad.jsonl", "{\"prompt\": \"hi\", \"response\": \"yo\"}", "", "{\"prompt\": 3}");
        var act = () => JsonlDatasetReader.ReadFile(bad);
        act.Should().Throw<DatasetFormatException>().WithMessage($"{bad}:3: \"prompt\" must be a string*");

        var json = Write("json.jsonl", "{\"prompt\": \"a\"}", "{not json");
        ((Action)(() => JsonlDatasetReader.ReadFile(json))).Should().Throw<DatasetFormatException>().WithMessage($"{json}:2: invalid JSON*");

        var mask = Write("mask.jsonl", "{\"ids\": [1,2,3], \"mask\": [0,1]}");
        ((Action)(() => JsonlDatasetReader.ReadFile(mask))).Should().Throw<DatasetFormatException>().WithMessage($"{mask}:1:*\"mask\" has 2 entries*");

        // A final assistant turn is the response (chat lines); two in a row leave no user turn before the answer.
        var roles = Write("roles.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}");
        ((Action)(() => JsonlDatasetReader.ReadFile(roles))).Should().Throw<DatasetFormatException>().WithMessage($"{roles}:1:*last of \"messages\"*");

        var empty = Write("empty.jsonl", "", "  ");
        ((Action)(() => JsonlDatasetReader.ReadFile(empty))).Should().Throw<DatasetFormatException>().WithMessage("*empty*");
    }

    [Fact]
    public void Missing_response_is_reported_when_the_data_is_loaded_with_its_location()
    {
        var path = Write("noresp.jsonl", "{\"prompt_ids\": [1, 2], \"response_ids\": [3]}", "{\"prompt_ids\": [1, 2], \"id\": 7}");
        var records = JsonlDatasetReader.ReadFile(path);
        records[1].Id.Should().Be("7");
        var act = () => TrainingData.Single(records, new SftExampleBuilder(), 0);
        act.Should().Throw<DatasetFormatException>().WithMessage($"{path}:2: the line has no \"response\"*");
        var text = Write("text.jsonl", "{\"prompt\": \"hi\", \"response\": \"yo\"}");
        var noEncoder = () => TrainingData.Single(JsonlDatasetReader.ReadFile(text), new SftExampleBuilder(), 0);
        noEncoder.Should().Throw<DatasetFormatException>().WithMessage($"{text}:1:*no tokenizer*");
    }

    [Fact]
    public void Text_records_go_through_the_encoder_prompt_then_response_with_end_of_turn()
    {
        var path = Write("t.jsonl", "{\"system\": \"S\", \"prompt\": \"P\", \"safe_response\": \"ab\"}");
        var data = TrainingData.Single(JsonlDatasetReader.ReadFile(path), new SftExampleBuilder(new FakeEncoder(), "safe_response"), 0);
        var e = data.Next();
        e.Ids.Should().Equal(100, 'S', 101, 'P', 102, 'a', 'b', 999);
        e.Targets.Should().Equal(false, false, false, false, false, true, true, true);
        e.ResponseStart.Should().Be(5);
    }

    private sealed class FakeEncoder : IConversationEncoder
    {
        public long[] EncodePrompt(IReadOnlyList<ChatMessage> messages) =>
            messages.SelectMany(m => new long[] { m.Role == "system" ? 100 : 101, m.Content[0] }).Append(102).ToArray();
        public long[] EncodeResponse(string response, bool appendEndOfTurn) =>
            response.Select(c => (long)c).Concat(appendEndOfTurn ? new long[] { 999 } : Array.Empty<long>()).ToArray();
    }

    [Fact]
    public void Mixer_draws_one_to_four_in_every_five_and_tags_sources()
    {
        var data = new TrainingData(new[]
        {
            new DataSource("harmful", Numbered(3, "h"), new SftExampleBuilder(), 1),
            new DataSource("benign", Numbered(7, "b"), new SftExampleBuilder(), 4),
        }, seed: 1);
        for (int block = 0; block < 6; block++)
        {
            var five = data.Next(5);
            five.Count(e => e.Source == "harmful").Should().Be(1);
            five.Count(e => e.Source == "benign").Should().Be(4);
            five.Where(e => e.Source == "harmful").Should().OnlyContain(e => e.Id!.StartsWith('h'));
        }
    }

    [Fact]
    public void Order_is_a_seeded_permutation_per_epoch_and_the_position_round_trips()
    {
        var records = Numbered(10, "r");
        var a = TrainingData.Single(records, new SftExampleBuilder(), seed: 42);
        var epoch1 = a.Next(10).Select(e => e.Id).ToArray();
        epoch1.Should().BeEquivalentTo(records.Select(r => r.Id));
        epoch1.Should().NotEqual(records.Select(r => r.Id), "shuffled");
        var epoch2 = a.Next(10).Select(e => e.Id).ToArray();
        epoch2.Should().BeEquivalentTo(epoch1).And.NotEqual(epoch1);
        TrainingData.Single(records, new SftExampleBuilder(), seed: 42).Next(10).Select(e => e.Id).Should().Equal(epoch1);
        TrainingData.Single(records, new SftExampleBuilder(), seed: 43).Next(10).Select(e => e.Id).Should().NotEqual(epoch1);

        var b = TrainingData.Single(records, new SftExampleBuilder(), seed: 42);
        b.Next(7);
        var json = JsonSerializer.Serialize(b.Position);
        var expected = b.Next(12).Select(e => e.Id).ToArray();
        var c = TrainingData.Single(records, new SftExampleBuilder(), seed: 42);
        c.Restore(JsonSerializer.Deserialize<DataPosition>(json)!);
        c.Next(12).Select(e => e.Id).Should().Equal(expected);
    }

    [Fact]
    public void Collator_right_pads_and_sets_masks_and_response_positions()
    {
        var e1 = new TrainingExample { Ids = new long[] { 5, 6, 7, 8 }, Targets = new[] { false, false, true, true }, ResponseStart = 2 };
        var e2 = new TrainingExample { Ids = new long[] { 9, 10 }, Targets = new[] { false, true }, ResponseStart = 1, Source = "benign" };
        using var b = BatchCollator.Collate(new[] { e1, e2 }, padId: 0, CPU);
        b.InputIds.data<long>().ToArray().Should().Equal(5, 6, 7, 8, 9, 10, 0, 0);
        b.AttentionMask.data<long>().ToArray().Should().Equal(1, 1, 1, 1, 1, 1, 0, 0);
        b.TargetMask.data<bool>().ToArray().Should().Equal(false, false, true, true, false, true, false, false);
        b.ResponsePositions.data<long>().ToArray().Should().Equal(0, 0, 1, 2, 0, 1, 0, 0);
        b.TargetCount.Should().Be(3);
        b.RowsFrom("benign").Should().Equal(1);
        using var m = b.TargetMaskFor("benign");
        m.data<bool>().ToArray().Should().Equal(false, false, false, false, false, true, false, false);
        using var cut = BatchCollator.Collate(new[] { e1, e2 }, 0, CPU, maxLength: 3);
        cut.Length.Should().Be(3);
        cut.TargetCount.Should().Be(2);
    }
}

public class SafetyRecoveryBuilderTests
{
    [Fact]
    public void Prefix_lengths_follow_p0_and_the_uniform_range_and_positions_start_after_the_prefix()
    {
        var record = new DatasetRecord { PromptIds = new long[] { 1, 2 }, HarmfulResponseIds = new long[] { 10, 11, 12, 13, 14, 15 }, SafeResponseIds = new long[] { 20, 21 }, Location = "t:1" };
        var builder = new SafetyRecoveryExampleBuilder(MaxPrefixLength: 4);
        var rng = new Random(5);
        var counts = new int[7];
        for (int i = 0; i < 4000; i++)
        {
            var e = builder.Build(record, rng);
            int k = e.ForcedPrefixLength;
            counts[k]++;
            e.Ids.Should().Equal(new long[] { 1, 2 }.Concat(record.HarmfulResponseIds![..k]).Concat(new long[] { 20, 21 }));
            e.Targets.Count(t => t).Should().Be(2);
            e.Targets[2 + k].Should().BeTrue();
            e.ResponseStart.Should().Be(2);
        }
        counts[5].Should().Be(0);
        counts[6].Should().Be(0);
        (counts[0] / 4000.0).Should().BeApproximately(0.5, 0.03);
        for (int k = 1; k <= 4; k++) (counts[k] / 4000.0).Should().BeApproximately(0.125, 0.02);
    }

    [Fact]
    public void Draws_are_reproducible_and_resume_identically()
    {
        var records = Enumerable.Range(0, 5).Select(i => new DatasetRecord { PromptIds = new long[] { 1 }, HarmfulResponseIds = Enumerable.Range(10, 30).Select(x => (long)x).ToArray(), SafeResponseIds = new long[] { 2 }, Location = $"r:{i}" }).ToArray();
        var a = TrainingData.Single(records, new SafetyRecoveryExampleBuilder(), 3);
        a.Next(4);
        var pos = a.Position;
        var expected = a.Next(9).Select(e => e.ForcedPrefixLength).ToArray();
        expected.Distinct().Count().Should().BeGreaterThan(2);
        var b = TrainingData.Single(records, new SafetyRecoveryExampleBuilder(), 3);
        b.Restore(pos);
        b.Next(9).Select(e => e.ForcedPrefixLength).Should().Equal(expected);
    }
}
