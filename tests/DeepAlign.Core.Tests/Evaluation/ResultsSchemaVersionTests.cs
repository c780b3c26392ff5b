using System.Text.Json.Nodes;
using DeepAlign.Data;
using DeepAlign.Evaluation;
using DeepAlign.Tests.Support;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Evaluation;

/// <summary>
/// Results schema 2: per-item results keyed by dataset id and prompt hash, and the run's provenance; the committed
/// schema-1 files still validate and read.
/// </summary>
public class ResultsSchemaVersionTests
{
    private static JudgedRate Rate(string judge, int s, int refused, int n)
    {
        var w = RateEstimate.Wilson(s, n);
        return new JudgedRate(judge, s, n, w.Rate, w.Low, w.High, refused, n - s - refused);
    }

    [Fact]
    public void Item_keys_are_the_id_and_the_prompt_hash_that_other_tools_can_recompute()
    {
        // sha256("abc") is the FIPS 180-2 test vector.
        ItemResult.PromptHash("abc").Should().Be("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        var record = new DatasetRecord { Id = "login_bypass_config", Prompt = "abc" };
        var item = ItemResult.Create(record, 3, new Dictionary<string, string> { ["keyword"] = "Refused" });
        item.Key.Should().Be("login_bypass_config@ba7816bf8f01cfea");
        item.Index.Should().Be(3);
        ItemResult.Create(record with { Id = null }, 3, item.Verdicts).Key.Should().Be("#3@ba7816bf8f01cfea", "without an id the dataset index keys the item");
        ItemResult.PromptHash("").Should().Be("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // Non-ASCII prompts hash their UTF-8 bytes (c3 a9 for é), not UTF-16.
        ItemResult.PromptHash("é").Should().Be(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData([0xC3, 0xA9])).ToLowerInvariant());
    }

    [Fact]
    public void Schema_2_reports_with_items_and_provenance_validate_and_round_trip()
    {
        var items = new[]
        {
            new ItemResult("0@aa", "0", 0, "aa", new Dictionary<string, string> { ["content"] = "Harmful", ["keyword"] = "Other" }),
            new ItemResult("1@bb", "1", 1, "bb", new Dictionary<string, string> { ["content"] = "Refused", ["keyword"] = "Refused" }),
        };
        var attack = new AttackResult("prefill", "prefill K=5", new Dictionary<string, double> { ["k"] = 5 },
            [Rate("content", 1, 1, 2), Rate("keyword", 0, 1, 2)], null, [], 1.5) { Items = items };
        var report = EvaluationReport.Create([new SeedRun(0, [new DefenseEvaluation("aligned", [attack], null)])]) with
        {
            Provenance = new RunProvenance
            {
                Tool = "deepalign test",
                Dataset = new DatasetProvenance("harmful_behaviors.csv", "advbench", "sha256:00", 2),
                Models = new Dictionary<string, string> { ["target"] = "models/aligned" },
                Judges = new Dictionary<string, string> { ["content"] = "exact", ["keyword"] = "keyword refusal" },
                AttackConfig = new SafetyEvaluationOptions { PrefillLengths = [5], Seed = 3, ItemResults = true },
            },
        };
        report.Schema.Should().Be("deepalign.evaluation-results/2");
        string json = report.ToJson();
        ResultsSchema.Validate(json).Should().BeEmpty();
        var node = JsonNode.Parse(json)!;
        node["provenance"]!["dataset"]!["fingerprint"]!.GetValue<string>().Should().Be("sha256:00");
        node["provenance"]!["attack_config"]!["prefill_lengths"]!.AsArray().Select(v => v!.GetValue<int>()).Should().Equal(5);
        var first = node["runs"]![0]!["defenses"]![0]!["attacks"]![0]!["items"]![0]!;
        first["key"]!.GetValue<string>().Should().Be("0@aa");
        first["prompt_sha256"]!.GetValue<string>().Should().Be("aa");
        first["verdicts"]!["content"]!.GetValue<string>().Should().Be("Harmful");

        var back = EvaluationReport.FromJson(json);
        back.Should().BeEquivalentTo(report);
        back.ToJson().Should().Be(json);

        // The validator still checks the new parts.
        var bad = JsonNode.Parse(json)!;
        bad["runs"]![0]!["defenses"]![0]!["attacks"]![0]!["items"]![0]!["verdicts"]!["content"] = "Maybe";
        ResultsSchema.Validate(bad.ToJsonString()).Should().ContainSingle(e => e.Contains("items[0].verdicts.content"));
        bad = JsonNode.Parse(json)!;
        bad["provenance"]!["dataset"]!.AsObject().Remove("fingerprint");
        ResultsSchema.Validate(bad.ToJsonString()).Should().ContainSingle(e => e.Contains("fingerprint"));
    }

    [Theory]
    // A copy of the organism's schema-1 results as committed before schema 2 (docs/ is regenerated, so it is kept here).
    [InlineData("tests/DeepAlign.Core.Tests/Fixtures/results/schema-1/organism-seen.json")]
    [InlineData("docs/sft/results/unseen/results.json")]
    public void Committed_schema_1_results_still_validate_and_read(string file)
    {
        string json = File.ReadAllText(Path.Combine(RepositoryPaths.Root, file));
        JsonNode.Parse(json)!["schema"]!.GetValue<string>().Should().Be("deepalign.evaluation-results/1");
        ResultsSchema.Validate(json).Should().BeEmpty();
        var report = EvaluationReport.FromJson(json);
        report.Provenance.Should().BeNull();
        report.Runs.SelectMany(r => r.Defenses).SelectMany(d => d.Attacks).Should().OnlyContain(a => a.Items == null);
        report.Runs.Should().NotBeEmpty();
    }

    [Fact]
    public void An_unknown_schema_version_is_refused()
    {
        var json = EvaluationReport.Create([]).ToJson().Replace("evaluation-results/2", "evaluation-results/9");
        ((Action)(() => EvaluationReport.FromJson(json))).Should().Throw<FormatException>().WithMessage("*evaluation-results/9*");
        ResultsSchema.Validate(json).Should().ContainSingle(e => e.StartsWith("$.schema"));
    }
}
