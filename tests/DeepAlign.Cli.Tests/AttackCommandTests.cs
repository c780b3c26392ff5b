using System.CommandLine;
using System.Text.Json.Nodes;
using DeepAlign.Cli.Commands;
using DeepAlign.Organism;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Tests.Support;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;

namespace DeepAlign.Tests.Cli;

/// <summary><c>deepalign attack</c> in process, against the shipped pinned organism pair.</summary>
public class AttackCommandTests
{
    public AttackCommandTests() => torch.set_num_threads(1);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.InProcess(new Command[] { AttackCommand.Create() }, args);

    [Fact]
    public void Attacks_the_aligned_model_and_prefilling_breaks_it_more_than_plain_requests()
    {
        var world = OrganismWorld.Generate();
        string pair = Path.Combine(AppContext.BaseDirectory, "Fixtures", "organism", "pinned", "organism-" + OrganismBuilder.CacheKey(world, new OrganismRecipe()));
        using var dir = new TempDir();
        string input = dir.File("harmful.jsonl"), judge = dir.File("judge.json");
        JsonlDatasetWriter.Write(input, world.HeldoutHarmful.Take(24).ToList());
        world.Judge!.Write(judge);

        var (code, output, err) = Run("attack", "--model", Path.Combine(pair, "aligned"), "--base", Path.Combine(pair, "base"),
            "--input", input, "--judge-spec", judge, "--prefill", "5,40", "--json", "--output", dir.File("out.json"));
        code.Should().Be(0, err);
        var runs = JsonNode.Parse(output)!["runs"]!.AsArray();
        var attacks = runs[0]!["defenses"]![0]!["attacks"]!.AsArray();
        attacks.Select(a => (string)a!["label"]!).Should().Contain(new[] { "plain", "prefill K=5", "prefill K=40" });
        attacks.Select(a => (string)a!["attack"]!).Should().Contain("rank_assisted", "--base enables the rank-assisted attack");
        double Rate(string label) => (double)attacks.Single(a => (string)a!["label"]! == label)!["judges"]![0]!["rate"]!;
        ((int)attacks[0]!["judges"]![0]!["n"]!).Should().Be(24);
        Rate("prefill K=40").Should().BeGreaterThan(Rate("plain"));
        File.ReadAllText(dir.File("out.json")).Trim().Should().Be(output.Trim());
    }

    [Fact]
    public void Contrastive_alpha_without_a_base_model_is_a_usage_error()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("h.jsonl"), "{\"prompt\": \"p\", \"harmful_response\": \"h\"}\n");
        Run("attack", "--model", dir.Path, "--input", dir.File("h.jsonl"), "--contrastive-alpha", "1").Code.Should().Be(2);
        Run("attack", "--model", dir.Path, "--input", dir.File("missing.jsonl")).Code.Should().Be(1);
    }
}
