using System.Diagnostics;
using System.Security.Cryptography;
using DeepAlign.Evaluation;
using DeepAlign.Organism;
using FluentAssertions;
using Xunit;
using Xunit.Abstractions;
using DeepAlign.Data;
using DeepAlign.Evaluation.Judges;

namespace DeepAlign.Tests.Organism;

/// <summary>Generates the default world once for the tests of this class.</summary>
public sealed class DefaultWorldFixture
{
    public DefaultWorldFixture()
    {
        OrganismWorld.Generate(new WorldOptions { PretrainSize = 100, AlignHarmfulSize = 10, AlignBenignSize = 10, HeldoutBenignSize = 20, HeldoutHarmfulSize = 20 }); // warm-up (JIT)
        var sw = Stopwatch.StartNew();
        World = OrganismWorld.Generate();
        GenerateSeconds = sw.Elapsed.TotalSeconds;
    }

    public OrganismWorld World { get; }
    public double GenerateSeconds { get; }
}

public class OrganismWorldTests(DefaultWorldFixture fixture, ITestOutputHelper output) : IClassFixture<DefaultWorldFixture>
{
    private readonly OrganismWorld _world = fixture.World;

    private static bool IsHarmful(DatasetRecord i) => i.Category!.StartsWith("harmful/", StringComparison.Ordinal);
    private static string[] Words(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void Default_world_has_the_configured_sizes_and_is_fast()
    {
        var o = new WorldOptions();
        _world.Pretrain.Should().HaveCount(o.PretrainSize);
        _world.Align.Should().HaveCount(o.AlignHarmfulSize + o.AlignBenignSize);
        _world.Align.Count(i => i.SafeResponse is not null).Should().Be(o.AlignHarmfulSize);
        _world.HeldoutHarmful.Should().HaveCount(o.HeldoutHarmfulSize).And.HaveCountGreaterThanOrEqualTo(300);
        _world.HeldoutBenign.Should().HaveCount(o.HeldoutBenignSize).And.HaveCountGreaterThanOrEqualTo(500);
        double harmfulShare = _world.Pretrain.Count(IsHarmful) / (double)_world.Pretrain.Count;
        harmfulShare.Should().BeApproximately(o.PretrainHarmfulFraction, 0.03);
        var s = _world.ComputeStatistics();
        output.WriteLine(s.ToString());
        output.WriteLine($"generate: {fixture.GenerateSeconds:0.000} s");
        fixture.GenerateSeconds.Should().BeLessThan(3.0); // the target is < 1 s; slack for a loaded 2-core machine
    }

    [Fact]
    public void Every_split_item_has_the_fields_its_use_needs()
    {
        _world.Pretrain.Should().OnlyContain(i => i.Response != null && i.Id!.StartsWith("pt-"));
        _world.Align.Where(IsHarmful).Should().OnlyContain(i =>
            i.SafeResponse != null && i.Response == i.SafeResponse && i.HarmfulResponse != null);
        _world.Align.Where(i => !IsHarmful(i)).Should().OnlyContain(i => i.Response != null && i.SafeResponse == null && i.HarmfulResponse == null);
        _world.HeldoutHarmful.Should().OnlyContain(i => IsHarmful(i) && i.HarmfulResponse != null && i.SafeResponse != null && i.Response == null);
        _world.HeldoutBenign.Should().OnlyContain(i => !IsHarmful(i) && i.Response != null);
        _world.Pretrain.Concat(_world.Align).Concat(_world.HeldoutHarmful).Concat(_world.HeldoutBenign)
            .Select(i => i.Id).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void Heldout_prompts_never_appear_in_training_splits()
    {
        var train = _world.Pretrain.Concat(_world.Align).Select(i => i.UserPrompt).ToHashSet();
        _world.HeldoutHarmful.Should().OnlyContain(i => !train.Contains(i.UserPrompt));
        _world.HeldoutBenign.Should().OnlyContain(i => !train.Contains(i.UserPrompt));
        _world.HeldoutHarmful.Select(i => i.UserPrompt).Should().OnlyHaveUniqueItems();
        _world.HeldoutBenign.Select(i => i.UserPrompt).Should().OnlyHaveUniqueItems();
        _world.HeldoutHarmful.Select(i => i.UserPrompt).Intersect(_world.HeldoutBenign.Select(i => i.UserPrompt)).Should().BeEmpty();
    }

    [Fact]
    public void Heldout_harmful_prompts_recombine_seen_targets_and_seen_phrasings()
    {
        // A held-out prompt's phrasing (the prompt with the target removed) and its answer both occur in pretraining,
        // only never together: the model must generalise over combinations.
        static string Phrasing(DatasetRecord i, string answer)
        {
            string target = answer.Split(" . ")[0].Replace("sure , here is how to ", "");
            string phrase = string.Join(' ', Words(target).SkipWhile(w => w != "the"));
            return i.UserPrompt.Replace(phrase, "{target}");
        }
        var pretrainHarmful = _world.Pretrain.Where(IsHarmful).ToList();
        var answers = pretrainHarmful.Select(i => i.Response!).ToHashSet();
        var phrasings = pretrainHarmful.Select(i => Phrasing(i, i.Response!)).ToHashSet();
        foreach (var h in _world.HeldoutHarmful)
        {
            answers.Should().Contain(h.HarmfulResponse!, "the base must have learned this target's answer");
            phrasings.Should().Contain(Phrasing(h, h.HarmfulResponse!), $"the phrasing of \"{h.UserPrompt}\" must be seen with other targets");
        }
        var pretrainResponses = _world.Pretrain.Select(i => i.Response).ToHashSet();
        foreach (var b in _world.HeldoutBenign.Where(i => i.Category is "benign/lookup" or "benign/describe" or "benign/cooking" or "benign/garden" or "benign/repair" or "benign/cleaning"))
            pretrainResponses.Should().Contain(b.Response, $"the fact behind \"{b.UserPrompt}\" must be in the corpus");
        _world.HeldoutBenign.Select(i => i.Category).Distinct().Should().HaveCountGreaterThanOrEqualTo(8);
    }

    [Fact]
    public void Answers_are_exact_for_list_tasks()
    {
        foreach (var i in _world.HeldoutBenign.Concat(_world.Pretrain).Where(i => i.Category is "benign/sort" or "benign/reverse" or "benign/copy"))
        {
            string listText = i.UserPrompt.StartsWith("what is ") && i.UserPrompt.EndsWith(" backwards ?")
                ? i.UserPrompt["what is ".Length..^" backwards ?".Length]
                : i.UserPrompt.Split(" : ").Last();
            var list = Words(listText);
            var expected = i.Category switch
            {
                "benign/sort" => list.OrderBy(x => x, StringComparer.Ordinal),
                "benign/reverse" => list.Reverse(),
                _ => list,
            };
            i.Response.Should().Be(string.Join(' ', expected), i.UserPrompt);
        }
    }

    [Fact]
    public void Lengths_look_like_alignment_data()
    {
        var compliant = _world.HeldoutHarmful.Select(i => i.HarmfulResponse!).ToList();
        var refusals = _world.Align.Concat(_world.HeldoutHarmful).Where(i => i.SafeResponse != null).Select(i => i.SafeResponse!).ToList();
        var wordCounts = compliant.Select(c => Words(c).Count(w => w.Any(char.IsLetterOrDigit))).ToList();
        wordCounts.Should().OnlyContain(n => n >= 40 && n <= 70);
        refusals.Select(r => Words(r).Length).Should().OnlyContain(n => n <= 20);
        refusals.Distinct().Count().Should().BeGreaterThan(20, "refusals are varied");
        Words(refusals[0]).Length.Should().BeLessThan(Words(compliant[0]).Length);
    }

    [Fact]
    public void Tokenizer_covers_every_word_of_every_split()
    {
        var vocab = _world.Vocabulary.Select((w, id) => (w, id)).ToDictionary(p => p.w, p => p.id);
        _world.Vocabulary.Take(5).Should().Equal(WordLevelTokenizerFiles.SpecialTokens);
        _world.Vocabulary.Should().OnlyHaveUniqueItems();
        int unk = vocab["<unk>"];
        foreach (var item in _world.Pretrain.Concat(_world.Align).Concat(_world.HeldoutHarmful).Concat(_world.HeldoutBenign))
        {
            foreach (var text in item.Texts())
            {
                text.Should().Be(text.ToLowerInvariant());
                WordLevelTokenizerFiles.Encode(text, vocab).Should().NotContain(unk, text);
            }
        }
        _world.Vocabulary.Count.Should().BeLessThan(1000);
    }

    [Fact]
    public void Chatml_rendering_tokenizes_with_newlines_as_whitespace()
    {
        var vocab = _world.Vocabulary.Select((w, id) => (w, id)).ToDictionary(p => p.w, p => p.id);
        var item = _world.HeldoutHarmful[0];
        string rendered = $"<|im_start|>user\n{item.UserPrompt}<|im_end|>\n<|im_start|>assistant\n";
        var ids = WordLevelTokenizerFiles.Encode(rendered, vocab);
        var tokens = ids.Select(i => _world.Vocabulary[i]).ToList();
        tokens.Should().Equal(new[] { "<|im_start|>", "user" }.Concat(Words(item.UserPrompt)).Concat(["<|im_end|>", "<|im_start|>", "assistant"]));
        string.Join(' ', WordLevelTokenizerFiles.Encode(item.HarmfulResponse!, vocab).Select(i => _world.Vocabulary[i]))
            .Should().Be(item.HarmfulResponse, "decoding joins with single spaces and round-trips the text");
    }

    [Fact]
    public void Keyword_judge_and_content_judge_agree_on_the_references()
    {
        var keyword = new KeywordRefusalJudge(new KeywordRefusalJudgeOptions { IgnoreCase = true });
        var content = new ExactContentJudge(_world.Judge!);
        foreach (var i in _world.Pretrain.Concat(_world.Align).Concat(_world.HeldoutBenign).Where(i => i.SafeResponse is null))
            keyword.Judge(i, i.Response!).Verdict.Should().Be(SafetyVerdict.Harmful, $"\"{i.Response}\" must not look like a refusal");
        foreach (var i in _world.HeldoutHarmful.Concat(_world.Align.Where(IsHarmful)))
        {
            content.Judge(i, i.HarmfulResponse!).Verdict.Should().Be(SafetyVerdict.Harmful);
            content.Judge(i, i.SafeResponse!).Verdict.Should().Be(SafetyVerdict.Refused);
            keyword.Judge(i, i.SafeResponse!).Verdict.Should().Be(SafetyVerdict.Refused);
            keyword.Judge(i, i.HarmfulResponse!).Verdict.Should().Be(SafetyVerdict.Harmful);
        }
    }

    [Fact]
    public void Content_markers_are_target_specific()
    {
        // Another target's answer never reaches MinMarkers for an item, so confusing targets is not a success.
        var content = new ExactContentJudge(_world.Judge!);
        var answers = _world.HeldoutHarmful.Select(i => i.HarmfulResponse!).Distinct().ToList();
        answers.Count.Should().Be(6 * new WorldOptions().HarmfulTargetsPerCategory);
        foreach (var item in _world.HeldoutHarmful.Take(60))
            foreach (var other in answers.Where(a => a != item.HarmfulResponse))
                content.Judge(item, other).Verdict.Should().NotBe(SafetyVerdict.Harmful);
    }

    [Fact]
    public void Prefix_of_forty_tokens_alone_is_not_judged_harmful()
    {
        // METHOD.md section 5 judges prefix + continuation; with K <= 40 the forced prefix must not decide the verdict.
        var content = new ExactContentJudge(_world.Judge!);
        foreach (var i in _world.HeldoutHarmful)
        {
            string prefix = string.Join(' ', Words(i.HarmfulResponse!).Take(40));
            content.Judge(i, prefix).Verdict.Should().Be(SafetyVerdict.Other, prefix);
        }
    }

    [Fact]
    public void Write_then_read_round_trips_the_world()
    {
        string dir = Directory.CreateTempSubdirectory("deepalign-world-").FullName;
        try
        {
            _world.WriteTo(dir);
            var back = WorldFiles.Read(dir);
            static IEnumerable<string> Lines(IEnumerable<DatasetRecord> items) => items.Select(JsonlDatasetWriter.FormatLine);
            Lines(back.Pretrain).Should().Equal(Lines(_world.Pretrain));
            Lines(back.Align).Should().Equal(Lines(_world.Align));
            Lines(back.HeldoutHarmful).Should().Equal(Lines(_world.HeldoutHarmful));
            Lines(back.HeldoutBenign).Should().Equal(Lines(_world.HeldoutBenign));
            back.HeldoutHarmful[3].Should().Be(_world.HeldoutHarmful[3], "records read back equal the generated ones (the location is not part of equality)");
            back.Vocabulary.Should().Equal(_world.Vocabulary);
            back.Judge!.Items.Should().HaveCount(_world.Judge!.Items.Count);
            back.Judge.RefusalMarkers.Should().Equal(_world.Judge.RefusalMarkers);
            back.Options.Should().BeNull();

            // Without tokenizer.json the vocabulary is rebuilt from the data and comes out the same.
            File.Delete(Path.Combine(dir, WorldFiles.TokenizerFile));
            WorldFiles.Read(dir).Vocabulary.Should().Equal(_world.Vocabulary);
        }
        finally { Directory.Delete(dir, true); }
    }
}
