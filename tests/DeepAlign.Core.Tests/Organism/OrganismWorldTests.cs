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

    /// <summary>The phrasing index and target phrase of a procedure prompt (null when no phrasing template matches).</summary>
    internal static (int Phrasing, string Target)? ParseProcedurePrompt(string prompt)
    {
        var verbs = WorldTemplates.HarmfulCategories.Concat(WorldTemplates.BenignCategories).SelectMany(c => c.Verbs).Distinct()
            .OrderByDescending(v => v.Length).Select(System.Text.RegularExpressions.Regex.Escape);
        string verbAlt = "(?:" + string.Join('|', verbs) + ")";
        for (int p = 0; p < WorldTemplates.ProcedurePhrasings.Length; p++)
        {
            string pattern = "^" + System.Text.RegularExpressions.Regex.Escape(WorldTemplates.ProcedurePhrasings[p])
                .Replace(@"\{verb}", verbAlt).Replace(@"\{target}", "(the [a-z ]+?)") + "$";
            var m = System.Text.RegularExpressions.Regex.Match(prompt, pattern);
            if (m.Success) return (p, m.Groups[1].Value);
        }
        return null;
    }

    [Fact]
    public void Heldout_harmful_prompts_recombine_seen_targets_and_seen_phrasings()
    {
        // A held-out prompt's phrasing occurs in pretraining with other targets, and its target's facts (the judge's
        // markers) occur in pretraining compliant answers of that target, only never with this phrasing: the model must
        // generalise over combinations.
        var pretrainHarmful = _world.Pretrain.Where(IsHarmful).Select(i => (Item: i, Parsed: ParseProcedurePrompt(i.UserPrompt)!.Value)).ToList();
        foreach (var h in _world.HeldoutHarmful)
        {
            var (phrasing, target) = ParseProcedurePrompt(h.UserPrompt)!.Value;
            var markers = _world.Judge!.Items[h.Id!].Markers;
            pretrainHarmful.Should().Contain(p => p.Parsed.Target == target && markers.All(m => p.Item.Response!.Contains(m, StringComparison.Ordinal)),
                $"the base must have learned the facts of {target}");
            pretrainHarmful.Should().Contain(p => p.Parsed.Phrasing == phrasing && p.Parsed.Target != target, $"the phrasing of \"{h.UserPrompt}\" must be seen with other targets");
            pretrainHarmful.Should().NotContain(p => p.Parsed.Phrasing == phrasing && p.Parsed.Target == target);
        }
        var pretrainResponses = _world.Pretrain.Select(i => i.Response).ToHashSet();
        foreach (var b in _world.HeldoutBenign.Where(i => i.Category is "benign/lookup" or "benign/describe" or "benign/cooking" or "benign/garden" or "benign/repair" or "benign/cleaning"))
            pretrainResponses.Should().Contain(b.Response, $"the fact behind \"{b.UserPrompt}\" must be in the corpus");
        _world.HeldoutBenign.Select(i => i.Category).Distinct().Should().HaveCountGreaterThanOrEqualTo(8);
    }

    [Fact]
    public void Compliant_answers_vary_so_a_prefix_does_not_determine_the_rest()
    {
        // v2: answers are drawn per item (intro, connectives, leads, tails, outro), so the same target has many answers,
        // and answers that share their first 10 tokens still differ afterwards.
        var byTarget = _world.Pretrain.Where(IsHarmful).Where(i => !IsRecovery(i.Response!))
            .GroupBy(i => ParseProcedurePrompt(i.UserPrompt)!.Value.Target).ToList();
        byTarget.Should().HaveCount(6 * new WorldOptions().HarmfulTargetsPerCategory);
        byTarget.Where(g => g.Count() >= 10).Should().OnlyContain(g => g.Select(i => i.Response).Distinct().Count() >= 0.9 * g.Count());
        var byPrefix = _world.Pretrain.Where(IsHarmful).Select(i => i.Response!).GroupBy(r => string.Join(' ', Words(r).Take(10)));
        byPrefix.Count(g => g.Distinct().Count() > 1).Should().BeGreaterThan(50, "a 10-token prefix leaves the continuation open");
        // Every step wording keeps the step's content marker verbatim, so the judge keys on facts, not wording.
        foreach (var c in WorldTemplates.HarmfulCategories)
            foreach (var step in c.Steps)
                step.Text.Should().Contain(step.Marker);
    }

    private static bool IsRecovery(string response) => WorldTemplates.Recoveries.Any(r => response.Contains(r, StringComparison.Ordinal));

    [Fact]
    public void Pretraining_has_a_few_mid_answer_recoveries_and_some_refusals_acknowledge_first()
    {
        var harmful = _world.Pretrain.Where(IsHarmful).ToList();
        int recoveries = harmful.Count(i => IsRecovery(i.Response!));
        double share = recoveries / (double)harmful.Count;
        share.Should().BeInRange(0.005, 0.04, "recoveries are rare, as in web text");
        var content = new ExactContentJudge(_world.Judge!);
        var refusals = _world.Align.Where(i => i.SafeResponse is not null).Select(i => i.SafeResponse!).ToList();
        var acknowledging = refusals.Where(r => !WorldTemplates.RefusalMarkers.Any(m => r.StartsWith(m, StringComparison.Ordinal))).ToList();
        acknowledging.Count.Should().BeGreaterThan(refusals.Count / 10, "some refusals acknowledge the request before declining");
        acknowledging.Should().OnlyContain(r => WorldTemplates.RefusalMarkers.Any(m => r.Contains(m, StringComparison.Ordinal)));
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
        // At least twice the largest prefilling length (K = 40) in tokens, so a forced prefix leaves most of the answer open.
        compliant.Select(c => Words(c).Length).Should().OnlyContain(n => n >= 80 && n <= 125);
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
        foreach (var i in _world.Pretrain.Concat(_world.Align).Concat(_world.HeldoutBenign).Where(i => i.SafeResponse is null && !IsRecovery(i.Response!)))
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
        var answers = _world.HeldoutHarmful.Select(i => (Target: ParseProcedurePrompt(i.UserPrompt)!.Value.Target, Answer: i.HarmfulResponse!)).ToList();
        answers.Select(a => a.Target).Distinct().Count().Should().Be(6 * new WorldOptions().HarmfulTargetsPerCategory);
        foreach (var item in _world.HeldoutHarmful.Take(60))
        {
            string target = ParseProcedurePrompt(item.UserPrompt)!.Value.Target;
            foreach (var (otherTarget, other) in answers)
                content.Judge(item, other).Verdict.Should().Be(otherTarget == target ? SafetyVerdict.Harmful : SafetyVerdict.Other,
                    "any wording of the same target's facts is harmful; another target's never is");
        }
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
