using System.CommandLine;
using System.Text.Json.Nodes;
using DeepAlign.Cli.Commands;
using DeepAlign.Data;
using DeepAlign.Organism;
using DeepAlign.Testing;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Tests.Support;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Cli;

/// <summary><c>profile --shard</c>, <c>attack --shard</c> and <c>merge</c> in process (docs/scale-out.md).</summary>
public class ShardMergeCommandTests
{
    public ShardMergeCommandTests() => torch.set_num_threads(1);

    private static (int Code, string Out, string Err) Run(params string[] args) =>
        CliRunner.InProcess(new Command[] { ProfileCommand.Create(), AttackCommand.Create(), MergeCommand.Create() }, args);

    [Fact]
    public void Profile_shards_merge_into_the_single_run_report()
    {
        using var dir = new TempDir();
        var config = TinyModelFactory.LlamaConfig(vocabSize: 40, hiddenSize: 32, layers: 2, intermediateSize: 64, initializerRange: 0.2);
        TinyModelFactory.SaveFolder(dir.File("base"), config, seed: 1);
        TinyModelFactory.SaveFolder(dir.File("aligned"), config, seed: 2);
        var rng = new Random(3);
        File.WriteAllLines(dir.File("in.jsonl"), Enumerable.Range(0, 7).Select(i =>
            $$"""{"id": "r{{i}}", "prompt_ids": [1, {{rng.Next(3, 40)}}], "response_ids": [{{string.Join(", ", Enumerable.Range(0, rng.Next(1, 9)).Select(_ => rng.Next(3, 40)))}}]}"""));
        string[] common = ["profile", "--base", dir.File("base"), "--aligned", dir.File("aligned"), "--input", dir.File("in.jsonl"), "--batch-size", "1"];
        Run([.. common, "--output", dir.File("whole"), "--probe", "0"]).Code.Should().Be(0);
        for (int k = 0; k < 2; k++)
        {
            var (code, stdout, err) = Run([.. common, "--output", dir.File($"part{k}"), "--shard", $"{k}/2"]);
            code.Should().Be(0, err);
            stdout.Should().Contain($"shard {k}/2: {(k == 0 ? 4 : 3)} of 7 sequences");
        }
        // Each shard's sequences keep their dataset index.
        File.ReadAllLines(Path.Combine(dir.File("part1"), "sequences.jsonl")).Select(l => (int)JsonNode.Parse(l)!["index"]!).Should().Equal(1, 3, 5);

        var (mergeCode, _, mergeErr) = Run("merge", "--output", dir.File("merged"), dir.File("part1"), Path.Combine(dir.File("part0"), "profile.partial.json"));
        mergeCode.Should().Be(0, mergeErr);
        var whole = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("whole"), "profile.json")))!;
        var merged = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("merged"), "profile.json")))!;
        merged["totals"]!.ToJsonString().Should().Be(whole["totals"]!.ToJsonString());
        var (wp, mp) = (whole["aggregates"]!["by_position"]!.AsArray(), merged["aggregates"]!["by_position"]!.AsArray());
        mp.Should().HaveCount(wp.Count);
        for (int j = 0; j < wp.Count; j++)
        {
            ((int)mp[j]!["n"]!).Should().Be((int)wp[j]!["n"]!);
            foreach (var field in new[] { "kl_mean", "u_mean", "bf_rate" })
                ((double)mp[j]![field]!).Should().BeApproximately((double)wp[j]![field]!, 1e-12);
        }

        Run("merge", "--output", dir.File("bad"), dir.File("part0")).Code.Should().Be(1, "shard 1/2 is missing");
        Run("merge", "--output", dir.File("bad"), dir.File("part0"), dir.File("part0")).Code.Should().Be(1, "shard 0/2 is given twice");
        Run([.. common, "--output", dir.File("x"), "--shard", "2/2"]).Code.Should().Be(2);
        Run([.. common, "--output", dir.File("x"), "--shard", "0/2", "--probe", "3"]).Code.Should().Be(2, "the probe is not sharded");
    }

    [Fact]
    public void Attack_shards_merge_into_the_single_run_results()
    {
        var world = OrganismWorld.Generate();
        string pair = Path.Combine(AppContext.BaseDirectory, "Fixtures", "organism", "pinned", "organism-" + OrganismBuilder.CacheKey(world, new OrganismRecipe()));
        using var dir = new TempDir();
        string input = dir.File("harmful.jsonl"), judge = dir.File("judge.json");
        JsonlDatasetWriter.Write(input, world.HeldoutHarmful.Take(12).ToList());
        world.Judge!.Write(judge);
        string[] common = ["attack", "--model", Path.Combine(pair, "aligned"), "--base", Path.Combine(pair, "base"), "--input", input,
            "--judge-spec", judge, "--prefill", "5", "--max-prompts", "9", "--seed", "3", "--json"];
        var (code, stdout, err) = Run([.. common, "--output", dir.File("whole.json")]);
        code.Should().Be(0, err);
        for (int k = 0; k < 2; k++) Run([.. common, "--shard", $"{k}/2", "--output", dir.File($"part{k}.json")]).Code.Should().Be(0);
        var (mergeCode, _, mergeErr) = Run("merge", "--output", dir.File("merged.json"), dir.File("part1.json"), dir.File("part0.json"));
        mergeCode.Should().Be(0, mergeErr);

        static IEnumerable<string> Counts(JsonNode report) => report["runs"]![0]!["defenses"]![0]!["attacks"]!.AsArray()
            .SelectMany(a => a!["judges"]!.AsArray().Select(j => $"{a["label"]}|{j!["judge"]}|{j["successes"]}/{j["n"]}|{j["refused"]}|{j["other"]}|{j["low"]}|{j["high"]}"));
        var whole = JsonNode.Parse(File.ReadAllText(dir.File("whole.json")))!;
        var merged = JsonNode.Parse(File.ReadAllText(dir.File("merged.json")))!;
        Counts(merged).Should().Equal(Counts(whole));
        Counts(whole).Should().Contain(c => c.Contains("|9/9|") || c.Contains("/9|"), "--max-prompts applies to the whole dataset before sharding");
        Run([.. common, "--shard", "0/2"]).Code.Should().Be(2, "--shard needs --output");
    }
}
