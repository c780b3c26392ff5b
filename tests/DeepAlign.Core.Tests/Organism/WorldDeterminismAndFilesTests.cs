using System.Security.Cryptography;
using System.Text.Json;
using DeepAlign.Organism;
using FluentAssertions;
using Xunit;
using DeepAlign.Runtime;
using DeepAlign.Data;

namespace DeepAlign.Tests.Organism;

public class WorldDeterminismAndFilesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("deepalign-worldfiles-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    private static readonly WorldOptions Small = new()
    {
        PretrainSize = 600, AlignHarmfulSize = 40, AlignBenignSize = 60, HeldoutHarmfulSize = 50, HeldoutBenignSize = 60,
    };

    private static Dictionary<string, byte[]> Files(string dir) =>
        Directory.GetFiles(dir).OrderBy(f => f, StringComparer.Ordinal).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes);

    private string WriteWorld(WorldOptions options, string name)
    {
        string dir = Path.Combine(_root, name);
        OrganismWorld.Generate(options).WriteTo(dir);
        return dir;
    }

    [Fact]
    public void Same_seed_gives_byte_identical_files_and_a_different_seed_differs()
    {
        var a = Files(WriteWorld(Small, "a"));
        var b = Files(WriteWorld(Small, "b"));
        var c = Files(WriteWorld(Small with { Seed = Small.Seed + 1 }, "c"));
        a.Keys.Should().BeEquivalentTo(
        [
            "pretrain.jsonl", "align.jsonl", "heldout_harmful.jsonl", "heldout_benign.jsonl", "judge.json",
            "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        ]);
        foreach (var (name, bytes) in a) b[name].Should().Equal(bytes, name);
        c["pretrain.jsonl"].Should().NotEqual(a["pretrain.jsonl"]);
        c["heldout_harmful.jsonl"].Should().NotEqual(a["heldout_harmful.jsonl"]);
        c["tokenizer.json"].Should().NotEqual(a["tokenizer.json"], "made-up words depend on the seed");
    }

    [Fact]
    public void Default_world_is_pinned_bit_for_bit()
    {
        // The pinned organism pair is regenerated from this world, so its bytes must not drift across runtimes or
        // machines. If the world is changed on purpose, update these hashes (and rebuild the pinned pair).
        var files = Files(WriteWorld(new WorldOptions(), "pinned"));
        var hashes = files.ToDictionary(kv => kv.Key, kv => Convert.ToHexString(SHA256.HashData(kv.Value))[..16]);
        hashes.Should().BeEquivalentTo(PinnedHashes);
    }

    internal static readonly Dictionary<string, string> PinnedHashes = new()
    {
        ["align.jsonl"] = "ED6BD15A80756704",
        ["heldout_benign.jsonl"] = "6FA5414B61F1592B",
        ["heldout_harmful.jsonl"] = "A4AC76BCD4CACD84",
        ["judge.json"] = "57526079EA5C7D62",
        ["pretrain.jsonl"] = "9639C6F8C5D5DEBF",
        ["special_tokens_map.json"] = "085C08311885CC43",
        ["tokenizer.json"] = "E72B0BDFED607300",
        ["tokenizer_config.json"] = "282B5192CB3B1C45",
    };

    [Fact]
    public void Tokenizer_json_is_a_hugging_face_word_level_file()
    {
        var dir = WriteWorld(Small, "tok");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")));
        var root = doc.RootElement;
        root.EnumerateObject().Select(p => p.Name).Should().Equal(
            "version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model");
        root.GetProperty("version").GetString().Should().Be("1.0");
        root.GetProperty("pre_tokenizer").GetProperty("type").GetString().Should().Be("WhitespaceSplit");
        root.GetProperty("decoder").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("normalizer").ValueKind.Should().Be(JsonValueKind.Null);
        var model = root.GetProperty("model");
        model.GetProperty("type").GetString().Should().Be("WordLevel");
        model.GetProperty("unk_token").GetString().Should().Be("<unk>");
        var added = root.GetProperty("added_tokens").EnumerateArray().ToList();
        added.Select(t => t.GetProperty("content").GetString()).Should().Equal("<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<|endoftext|>");
        foreach (var t in added)
        {
            t.EnumerateObject().Select(p => p.Name).Should().Equal("id", "content", "single_word", "lstrip", "rstrip", "normalized", "special");
            t.GetProperty("special").GetBoolean().Should().BeTrue();
            t.GetProperty("normalized").GetBoolean().Should().BeFalse();
            model.GetProperty("vocab").GetProperty(t.GetProperty("content").GetString()!).GetInt32().Should().Be(t.GetProperty("id").GetInt32());
        }
        var ids = model.GetProperty("vocab").EnumerateObject().Select(p => p.Value.GetInt32()).ToList();
        ids.Should().Equal(Enumerable.Range(0, ids.Count));
        File.ReadAllText(Path.Combine(dir, "tokenizer.json")).Should().Contain("\"<|im_start|>\"").And.NotContain("\r");
    }

    [Fact]
    public void Tokenizer_config_has_the_chatml_template_and_special_tokens()
    {
        var dir = WriteWorld(Small, "cfg");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer_config.json")));
        var root = doc.RootElement;
        root.GetProperty("eos_token").GetString().Should().Be("<|im_end|>");
        root.GetProperty("pad_token").GetString().Should().Be("<pad>");
        root.GetProperty("unk_token").GetString().Should().Be("<unk>");
        root.GetProperty("add_bos_token").GetBoolean().Should().BeFalse();
        root.GetProperty("bos_token").ValueKind.Should().Be(JsonValueKind.Null);
        string template = root.GetProperty("chat_template").GetString()!;
        template.Should().Contain("{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}");
        template.Should().Contain("{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}");
        root.GetProperty("added_tokens_decoder").GetProperty("3").GetProperty("content").GetString().Should().Be("<|im_end|>");
    }

    [Fact]
    public void Reading_reports_missing_files_and_bad_lines_with_their_location()
    {
        var dir = WriteWorld(Small, "bad");
        string align = Path.Combine(dir, "align.jsonl");
        var lines = File.ReadAllLines(align);
        lines[4] = "{\"prompt\": \"no answer here\"}";
        File.WriteAllLines(align, lines);
        FluentActions.Invoking(() => WorldFiles.Read(dir)).Should().Throw<DatasetFormatException>()
            .Where(e => e.Message.StartsWith($"{align}:5: ") && e.Message.Contains("\"response\" or \"safe_response\""));

        lines[4] = "{\"prompt\": \"broken\"";
        File.WriteAllLines(align, lines);
        FluentActions.Invoking(() => WorldFiles.Read(dir)).Should().Throw<DatasetFormatException>()
            .Where(e => e.Message.StartsWith($"{align}:5: ") && e.Message.Contains("invalid JSON"));

        File.Delete(Path.Combine(dir, "heldout_benign.jsonl"));
        File.Delete(align);
        FluentActions.Invoking(() => WorldFiles.Read(dir)).Should().Throw<FileNotFoundException>().WithMessage("*align.jsonl*");
        FluentActions.Invoking(() => WorldFiles.Read(Path.Combine(_root, "nope"))).Should().Throw<DirectoryNotFoundException>();
    }

    [Fact]
    public void Reading_a_user_world_accepts_messages_form_without_judge_or_tokenizer()
    {
        string dir = Path.Combine(_root, "user");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "pretrain.jsonl"), "{\"prompt\":\"Hi there\",\"response\":\"Hello!\"}\n");
        File.WriteAllText(Path.Combine(dir, "align.jsonl"),
            "{\"messages\":[{\"role\":\"system\",\"content\":\"Be safe\"},{\"role\":\"user\",\"content\":\"Do harm\"}],\"safe_response\":\"No.\",\"note\":1}\n");
        File.WriteAllText(Path.Combine(dir, "heldout_harmful.jsonl"), "{\"prompt\":\"Do harm\",\"harmful_response\":\"Ok: harm.\"}\n");
        File.WriteAllText(Path.Combine(dir, "heldout_benign.jsonl"), "{\"prompt\":\"Hi\",\"response\":\"Hello!\"}\n");
        var world = WorldFiles.Read(dir);
        world.Judge.Should().BeNull();
        world.Align[0].System.Should().Be("Be safe");
        world.Align[0].Prompt.Should().Be("Do harm");
        world.Vocabulary.Should().Contain(["Hello!", "Be", "safe", "No.", "Ok:", "harm.", "system", "user", "assistant"]);
        world.Vocabulary.Take(5).Should().Equal(WordLevelTokenizerFiles.SpecialTokens);

        File.WriteAllText(Path.Combine(dir, "heldout_harmful.jsonl"), "{\"prompt\":\"Do harm\",\"response\":\"Ok\"}\n");
        FluentActions.Invoking(() => WorldFiles.Read(dir)).Should().Throw<DatasetFormatException>()
            .Where(e => e.Message.Contains("heldout_harmful.jsonl:1: ") && e.Message.Contains("harmful_response"));
        File.WriteAllText(Path.Combine(dir, "heldout_harmful.jsonl"), "\n");
        FluentActions.Invoking(() => WorldFiles.Read(dir)).Should().Throw<DatasetFormatException>().WithMessage("*the dataset is empty*");
    }

    [Theory]
    [InlineData(nameof(WorldOptions.PretrainSize))]
    [InlineData(nameof(WorldOptions.PretrainHarmfulFraction))]
    [InlineData(nameof(WorldOptions.HeldoutHarmfulSize))]
    [InlineData(nameof(WorldOptions.HeldoutPhrasingFraction))]
    [InlineData(nameof(WorldOptions.MinMarkers))]
    public void Invalid_options_name_the_field(string field)
    {
        var bad = field switch
        {
            nameof(WorldOptions.PretrainSize) => new WorldOptions { PretrainSize = 0 },
            nameof(WorldOptions.PretrainHarmfulFraction) => new WorldOptions { PretrainHarmfulFraction = 1.5 },
            nameof(WorldOptions.HeldoutHarmfulSize) => new WorldOptions { HeldoutHarmfulSize = 0 },
            nameof(WorldOptions.HeldoutPhrasingFraction) => new WorldOptions { HeldoutPhrasingFraction = 1 },
            _ => new WorldOptions { MinMarkers = 6 },
        };
        FluentActions.Invoking(() => OrganismWorld.Generate(bad)).Should().Throw<ArgumentException>()
            .Where(e => e.ParamName == field && e.Message.Contains("WorldOptions." + field));
    }

    [Fact]
    public void Asking_for_more_heldout_harmful_prompts_than_exist_names_the_field()
    {
        FluentActions.Invoking(() => OrganismWorld.Generate(Small with { HarmfulTargetsPerCategory = 1, HeldoutHarmfulSize = 1000 }))
            .Should().Throw<ArgumentException>().Where(e => e.ParamName == nameof(WorldOptions.HeldoutHarmfulSize));
    }

    [Fact]
    public void Generator_stream_is_the_reference_splitmix64()
    {
        // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        var rng = new SplitMix64(1234567);
        rng.NextUInt64().Should().Be(6457827717110365317UL);
        rng.NextUInt64().Should().Be(3203168211198807973UL);
        rng.NextUInt64().Should().Be(9817491932198370423UL);
    }
}
