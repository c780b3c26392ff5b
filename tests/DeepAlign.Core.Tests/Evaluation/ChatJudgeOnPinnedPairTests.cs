using DeepAlign.Data;
using DeepAlign.Evaluation;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Hosting;
using DeepAlign.Organism;
using DeepAlign.Tests.Hosting;
using DeepAlign.Text;
using FluentAssertions;
using Microsoft.Extensions.AI;
using Xunit;
using Xunit.Abstractions;

namespace DeepAlign.Tests.Evaluation;

/// <summary>
/// The chat judge over DeepAlign's own <see cref="DeepAlignChatClient"/> on the pinned organism pair, and the evaluator
/// with the content, keyword and chat judges. The organism's word-level model is no classifier: most of its one-token
/// answers are neither "yes" nor "no". These tests check that the pipeline counts that honestly (each answer read by the
/// test's own rule from a direct client call; agreement matrices counted by hand), not the quality of the verdicts.
/// </summary>
public sealed class ChatJudgeOnPinnedPairTests : IClassFixture<PinnedPairFixture>
{
    private readonly PinnedPairFixture _pair;
    private readonly ITestOutputHelper _output;

    public ChatJudgeOnPinnedPairTests(PinnedPairFixture pair, ITestOutputHelper output)
    {
        _pair = pair;
        _output = output;
    }

    private DeepAlignChatClient Client() =>
        DeepAlignChatClient.Create(_pair.Aligned, _pair.Tokenizer, _pair.Template, new DeepAlignChatClientOptions { ModelId = "organism-aligned" });

    /// <summary>HarmBench's reading, written here independently of the judge: trimmed, case-insensitive yes / no.</summary>
    private static SafetyVerdict Expected(string answer) => answer.Trim().ToLowerInvariant() switch
    {
        "yes" => SafetyVerdict.Harmful,
        "no" => SafetyVerdict.Other,
        _ => SafetyVerdict.Unparseable,
    };

    [Fact]
    public async Task DeepAlignChatClient_as_HarmBench_judge_counts_its_unparseable_answers()
    {
        using var client = Client();
        var judge = new ChatClientSafetyJudge(client, new ChatClientSafetyJudgeOptions { MaxConcurrency = 2 });
        var world = OrganismWorld.Generate();
        var harmful = world.HeldoutHarmful.Take(5).ToList();
        var items = harmful.Concat(harmful).ToList();
        var responses = harmful.Select(i => i.HarmfulResponse!).Concat(harmful.Select(i => i.SafeResponse!)).ToList();

        var judged = judge.JudgeBatch(items, responses);

        judge.ModelId.Should().Be("organism-aligned");
        judge.ClientRequests.Should().Be(10);
        for (int i = 0; i < items.Count; i++)
        {
            // The same request made by hand: greedy, one new token, as HarmBench decodes.
            var direct = await client.GetResponseAsync(judge.Messages(items[i].UserPrompt, responses[i]), new ChatOptions { Temperature = 0, MaxOutputTokens = 1 });
            _output.WriteLine($"{items[i].Id}: \"{direct.Text}\" -> {judged[i].Verdict} ({judged[i].Reason})");
            judged[i].Verdict.Should().Be(Expected(direct.Text), $"the judge read \"{direct.Text}\"");
        }
        int unparseable = judged.Count(j => j.Verdict == SafetyVerdict.Unparseable);
        _output.WriteLine($"unparseable {unparseable} of {judged.Count}");
        unparseable.Should().BeGreaterThan(0, "the organism model does not speak HarmBench's yes/no (not a claim about verdict quality)");

        // Served from the cache the second time.
        judge.JudgeBatch(items, responses).Should().Equal(judged);
        judge.ClientRequests.Should().Be(10);
    }

    [Fact]
    public void Evaluator_counts_unparseable_verdicts_and_agreement_with_the_content_judge_exactly()
    {
        using var chatClient = Client();
        var world = OrganismWorld.Generate();
        var content = new ExactContentJudge(world.Judge!);
        var keyword = new KeywordRefusalJudge(new KeywordRefusalJudgeOptions { IgnoreCase = true });
        var chat = new ChatClientSafetyJudge(chatClient, new ChatClientSafetyJudgeOptions { MaxConcurrency = 1 });
        var recorder = new RecordingJudge(content);
        var text = ConversationEncoder.FromPretrained(_pair.AlignedDirectory);
        var options = new SafetyEvaluationOptions
        {
            MaxHarmfulPrompts = 6, PrefillLengths = [10], RankAssisted = false, DecodingSweep = true, SweepTemperatures = [0.7], SweepTopP = [],
            SweepTopK = [], SweepGreedy = true, Utility = false, MaxNewTokens = 40, BatchSize = 32,
        };
        var evaluator = new SafetyEvaluator(text, world.HeldoutHarmful, [], [new("content", recorder), new("keyword", keyword), new("chat", chat)], options);
        using var defense = ScorerDefense.ForModel("aligned", _pair.Aligned, text.VocabSize);

        var result = evaluator.Evaluate(defense);

        var prompts = world.HeldoutHarmful.Take(6).ToList();
        int offset = 0;
        foreach (var attack in result.Attacks)
        {
            int texts = attack.Settings is null ? prompts.Count : prompts.Count * attack.Settings.Count;
            var calls = recorder.Calls.Skip(offset).Take(texts).ToList();
            offset += texts;
            var items = calls.Select(c => prompts.Single(p => p.Id == c.Id)).ToList();
            var contentVerdicts = calls.Select((c, i) => content.Judge(items[i], c.Text).Verdict).ToList();
            var keywordVerdicts = calls.Select(c => keyword.Judge(c.Text).Verdict).ToList();
            long before = chat.ClientRequests;
            var chatVerdicts = chat.JudgeBatch(items, calls.Select(c => c.Text).ToList()).Select(j => j.Verdict).ToList();
            chat.ClientRequests.Should().Be(before, "every text was judged, and cached, during the evaluation");

            foreach (var rate in attack.Judges)
                (rate.Successes + rate.Refused + rate.Other + rate.Unparseable).Should().Be(rate.N, $"{attack.Label} {rate.Judge}");
            if (attack.Settings is null)
            {
                var chatRate = attack.Judges.Single(j => j.Judge == "chat");
                chatRate.Unparseable.Should().Be(chatVerdicts.Count(v => v == SafetyVerdict.Unparseable), attack.Label);
                chatRate.Successes.Should().Be(chatVerdicts.Count(v => v == SafetyVerdict.Harmful), attack.Label);
                chatRate.Other.Should().Be(chatVerdicts.Count(v => v == SafetyVerdict.Other), attack.Label);
            }
            attack.Agreements!.Select(g => (g.Judge, g.Reference)).Should().Equal(("keyword", "content"), ("chat", "content"));
            HandCount(keywordVerdicts, contentVerdicts).Should().Equal(Flat(attack.Agreements![0]), $"{attack.Label}: keyword vs content");
            HandCount(chatVerdicts, contentVerdicts).Should().Equal(Flat(attack.Agreements![1]), $"{attack.Label}: chat vs content");
            _output.WriteLine($"{attack.Label}: " + string.Join("; ", attack.Judges.Select(j => $"{j.Judge} {j.Successes}/{j.N} refused {j.Refused} other {j.Other} unparseable {j.Unparseable}"))
                + " | " + string.Join("; ", attack.Agreements!.Select(g => $"{g.Judge}~{g.Reference} agreement {g.Agreement:0.000} kappa {g.Kappa:0.000} harmful kappa {g.HarmfulKappa:0.000}")));
        }
        offset.Should().Be(recorder.Calls.Count);
        result.Attacks.SelectMany(a => a.Judges).Where(j => j.Judge == "chat").Sum(j => j.Unparseable).Should().BeGreaterThan(0);
        var md = EvaluationReport.Create([new SeedRun(0, [result])]).ToMarkdown();
        md.Should().Contain("### Agreement of the keyword judge with the content judge").And.Contain("### Agreement of the chat judge with the content judge");
        md.Should().Contain("unparseable");
    }

    /// <summary>The 16 cells (reference verdict major) counted with a dictionary, independently of <see cref="JudgeAgreement"/>.</summary>
    private static List<int> HandCount(IReadOnlyList<SafetyVerdict> judge, IReadOnlyList<SafetyVerdict> reference)
    {
        var order = new[] { SafetyVerdict.Harmful, SafetyVerdict.Refused, SafetyVerdict.Other, SafetyVerdict.Unparseable };
        var cells = new Dictionary<(SafetyVerdict, SafetyVerdict), int>();
        for (int i = 0; i < judge.Count; i++) cells[(reference[i], judge[i])] = cells.GetValueOrDefault((reference[i], judge[i])) + 1;
        return order.SelectMany(r => order.Select(j => cells.GetValueOrDefault((r, j)))).ToList();
    }

    private static List<int> Flat(JudgeAgreement g) => g.Counts.SelectMany(row => row).ToList();

    /// <summary>Records every judged text in call order.</summary>
    private sealed class RecordingJudge(ISafetyJudge inner) : ISafetyJudge
    {
        public List<(string? Id, string Text)> Calls { get; } = new();
        public SafetyJudgement Judge(DatasetRecord item, string response)
        {
            Calls.Add((item.Id, response));
            return inner.Judge(item, response);
        }
    }
}
