using DeepAlign.Data;
using DeepAlign.Evaluation;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Models;
using DeepAlign.Organism;
using DeepAlign.Text;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Evaluation;

/// <summary>Sharded attack runs (docs/scale-out.md) on the pinned organism pair: the merge of the shards equals one run.</summary>
public class ShardedAttackTests
{
    private readonly Xunit.Abstractions.ITestOutputHelper output;

    public ShardedAttackTests(Xunit.Abstractions.ITestOutputHelper output)
    {
        this.output = output;
        torch.set_num_threads(1);
    }

    private static readonly string PinnedRoot = Path.Combine(AppContext.BaseDirectory, "Fixtures", "organism", "pinned");

    [Fact]
    public void Merged_attack_shards_equal_one_run_exactly()
    {
        var world = OrganismWorld.Generate();
        var pair = OrganismBuilder.TryLoad(Path.Combine(PinnedRoot, "organism-" + OrganismBuilder.CacheKey(world, new OrganismRecipe())))!;
        using var baseModel = CausalLanguageModel.FromPretrained(pair.BaseDirectory, torch.CPU);
        using var aligned = CausalLanguageModel.FromPretrained(pair.AlignedDirectory, torch.CPU);
        var text = ConversationEncoder.FromPretrained(pair.AlignedDirectory);
        var judges = new[] { new NamedJudge("content", new ExactContentJudge(world.Judge!)), new NamedJudge("keyword", new KeywordRefusalJudge()) };
        var options = new SafetyEvaluationOptions
        {
            PrefillLengths = [5], RankAssisted = true, MaxNewTokens = 64, Utility = false, Seed = 7, Examples = 3,
            SweepTemperatures = [0.7, 3.0], SweepTopP = [0.5], SweepTopK = [5], SweepGreedy = true, DecodingSweep = true, BatchSize = 64,
            ItemResults = true,
        };
        var harmful = world.HeldoutHarmful.Take(14).ToArray();
        using var defense = ScorerDefense.ForModel("aligned", aligned, text.VocabSize);

        var single = new SafetyEvaluator(text, harmful, [], judges, options, baseModel).Evaluate(defense);

        const int n = 3;
        var parts = new List<AttackPartialReport>();
        foreach (int k in new[] { 1, 2, 0 })
        {
            var shard = new ShardSpec(k, n);
            var rows = shard.Select(harmful).ToArray();
            var evaluator = new SafetyEvaluator(text, rows.Select(r => r.Item).ToArray(), [], judges, options, baseModel,
                harmfulRecordIndices: rows.Select(r => r.RecordIndex).ToArray());
            var partial = AttackPartialReport.Create(shard, "sha256:abc", harmful.Length, evaluator, evaluator.Evaluate(defense));
            parts.Add(AttackPartialReport.FromJson(partial.ToJson(), $"shard{k}.json"));
        }
        var merged = AttackPartialReport.Merge(parts).Runs.Single().Defenses.Single();

        merged.Defense.Should().Be(single.Defense);
        merged.Attacks.Select(a => a.Label).Should().Equal(single.Attacks.Select(a => a.Label));
        merged.Attacks.Should().HaveCount(4, "plain, prefill, rank-assisted and the sweep ran");
        for (int a = 0; a < single.Attacks.Count; a++)
        {
            var (x, y) = (merged.Attacks[a], single.Attacks[a]);
            x.Judges.Should().Equal(y.Judges, $"attack {y.Label}: counts, rates and Wilson intervals");
            (x.Settings ?? []).Should().Equal(y.Settings ?? []);
            x.Examples.Should().Equal(y.Examples);
            x.Parameters.Should().BeEquivalentTo(y.Parameters);
            // The keyword judge's agreement with the content judge: counts add up over shards to the single run's.
            y.Agreements!.Single().N.Should().Be(harmful.Length * (y.Settings?.Count ?? 1), $"attack {y.Label}: every judged text");
            x.Agreements!.Select(g => (g.Judge, g.Reference, string.Join(",", g.Counts.SelectMany(r => r))))
                .Should().Equal(y.Agreements!.Select(g => (g.Judge, g.Reference, string.Join(",", g.Counts.SelectMany(r => r)))), $"attack {y.Label}");
            x.Items.Should().BeEquivalentTo(y.Items, o => o.WithStrictOrdering(), $"attack {y.Label}: the shards' items in dataset order are the single run's");
        }
        // Every item is keyed by its dataset index and prompt hash, and its verdicts add up to the rates' counts.
        foreach (var a in single.Attacks)
        {
            a.Items.Should().HaveCount(harmful.Length);
            a.Items!.Select(i => i.Index).Should().Equal(Enumerable.Range(0, harmful.Length));
            for (int i = 0; i < harmful.Length; i++)
            {
                string sha = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(harmful[i].UserPrompt))).ToLowerInvariant();
                a.Items[i].PromptSha256.Should().Be(sha);
                a.Items[i].Key.Should().Be($"{harmful[i].Id}@{sha[..16]}");
            }
            foreach (var j in a.Judges)
            {
                var verdicts = a.Items.Select(i => i.Verdicts[j.Judge]).ToList();
                (verdicts.Count(v => v == "Harmful"), verdicts.Count(v => v == "Refused"), verdicts.Count(v => v == "Other"))
                    .Should().Be((j.Successes, j.Refused, j.Other), $"{a.Label} under {j.Judge}");
            }
        }
        foreach (var a in single.Attacks) foreach (var j in a.Judges) output.WriteLine($"{a.Label} {j.Judge}: {j.Successes}/{j.N} refused {j.Refused} other {j.Other}");
        foreach (var a in single.Attacks) foreach (var x in a.Examples) output.WriteLine($"{a.Label}: {x.Response} => {x.Verdict}");
        // Not vacuous: successes, refusals and others all occur, with different counts per shard.
        single.Attacks.SelectMany(a => a.Judges).Sum(j => j.Successes).Should().BeGreaterThan(0);
        single.Attacks.SelectMany(a => a.Judges).Sum(j => j.Refused).Should().BeGreaterThan(0);
        single.Attacks.SelectMany(a => a.Judges).Sum(j => j.Other).Should().BeGreaterThan(0);

        // The partials refuse a wrong merge.
        Assert.Throws<ShardMergeException>(() => AttackPartialReport.Merge(parts.Take(2).ToList())).Error.Should().Be(ShardMergeError.Missing);
        Assert.Throws<ShardMergeException>(() => AttackPartialReport.Merge([.. parts, parts[0]])).Error.Should().Be(ShardMergeError.Overlapping);
        Assert.Throws<ShardMergeException>(() => AttackPartialReport.Merge([parts[0] with { Seed = 8 }, parts[1], parts[2]])).Error.Should().Be(ShardMergeError.Mismatched);
        Assert.Throws<ShardMergeException>(() => AttackPartialReport.Merge([parts[0] with { DatasetFingerprint = "sha256:x" }, parts[1], parts[2]])).Error.Should().Be(ShardMergeError.Mismatched);
        Assert.Throws<ShardMergeException>(() => AttackPartialReport.FromJson(parts[0].ToJson().Replace("\"schema_version\": 1", "\"schema_version\": 9"), "p.json")).Error.Should().Be(ShardMergeError.Format);
    }
}
