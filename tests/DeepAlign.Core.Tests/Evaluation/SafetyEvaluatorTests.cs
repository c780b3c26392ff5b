using DeepAlign.Organism.Experiment;
using DeepAlign.Evaluation;
using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Organism;
using FluentAssertions;
using TorchSharp;
using Xunit;
using DeepAlign.Data;
using DeepAlign.Text;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Runtime;

namespace DeepAlign.Tests.Evaluation;

/// <summary>The harness's scheduling on the shipped pinned organism pair: batched sweep and parallel workers change nothing.</summary>
public class SafetyEvaluatorTests
{
    public SafetyEvaluatorTests() => torch.set_num_threads(1);

    private static readonly string PinnedRoot = Path.Combine(AppContext.BaseDirectory, "Fixtures", "organism", "pinned");

    private sealed class Pair : IDisposable
    {
        public Pair()
        {
            World = OrganismWorld.Generate();
            var pair = OrganismBuilder.TryLoad(Path.Combine(PinnedRoot, "organism-" + OrganismBuilder.CacheKey(World, new OrganismRecipe())))!;
            Base = CausalLanguageModel.FromPretrained(pair.BaseDirectory, torch.CPU);
            Aligned = CausalLanguageModel.FromPretrained(pair.AlignedDirectory, torch.CPU);
            Text = ConversationEncoder.FromPretrained(pair.AlignedDirectory);
        }

        public OrganismWorld World { get; }
        public DeepAlign.Models.Common.DecoderOnlyCausalLM Base { get; }
        public DeepAlign.Models.Common.DecoderOnlyCausalLM Aligned { get; }
        public ConversationEncoder Text { get; }

        public SafetyEvaluator Evaluator(SafetyEvaluationOptions options) =>
            new(Text, World.HeldoutHarmful, World.HeldoutBenign, [new NamedJudge("content", new ExactContentJudge(World.Judge!))], options, Base);

        public List<IDefense> Defenses() =>
        [
            ScorerDefense.ForModel("aligned", Aligned, Text.VocabSize),
            DefenseRoster.Contrastive("cd-full", Base, Aligned, Text, ContrastiveRule.Full, new ConstantAlpha(1.0), 0.1),
            ScorerDefense.ForModel("base", Base, Text.VocabSize),
        ];

        public void Dispose()
        {
            Base.Dispose();
            Aligned.Dispose();
        }
    }

    private static readonly SafetyEvaluationOptions Small = new()
    {
        MaxHarmfulPrompts = 12, MaxBenignPrompts = 12, PrefillLengths = [10], RankAssisted = true, MaxNewTokens = 40,
        SweepTemperatures = [0.5, 4.0], SweepTopP = [0.5], SweepTopK = [5], BatchSize = 64,
    };

    /// <summary>Everything but wall times, as comparable strings.</summary>
    private static IEnumerable<string> Fingerprint(DefenseEvaluation e) =>
        e.Attacks.SelectMany(a => a.Judges.Select(j => $"{e.Defense}|{a.Label}|{j.Judge}|{j.Successes}/{j.N}|{j.Refused}|{j.Other}")
                .Concat((a.Settings ?? []).Select(s => $"{e.Defense}|{a.Label}|{s.Name}|{s.Successes}/{s.N}"))
                .Concat(a.Examples.Select(x => $"{e.Defense}|{a.Label}|{x.Id}|{x.Response}|{x.Verdict}")))
            .Append($"{e.Defense}|utility|{e.Utility?.BenignAccuracy.Successes}|{e.Utility?.Perplexity:R}|{e.Utility?.Agreement?.Successes}/{e.Utility?.Agreement?.N}");

    [Fact]
    public void Parallel_workers_give_exactly_the_sequential_results_and_agreement_with_the_reference()
    {
        using var pair = new Pair();
        var sequentialDefenses = pair.Defenses();
        var parallelDefenses = pair.Defenses();
        try
        {
            var sequential = pair.Evaluator(Small);
            var expected = sequentialDefenses.Select(d => sequential.Evaluate(d, d.Name == "aligned" ? null : "aligned")).ToList();
            var parallel = pair.Evaluator(Small).EvaluateAll(parallelDefenses, "aligned", maxParallelism: 2);

            parallel.Select(e => e.Defense).Should().Equal("aligned", "cd-full", "base");
            parallel.SelectMany(Fingerprint).Should().Equal(expected.SelectMany(Fingerprint));
            parallel[0].Utility!.Agreement.Should().BeNull("the reference is not compared with itself");
            parallel[1].Utility!.Agreement!.N.Should().Be(12);
            parallel[2].Utility!.Agreement!.N.Should().Be(12);
        }
        finally
        {
            foreach (var d in sequentialDefenses.Concat(parallelDefenses)) d.Dispose();
        }
    }

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

    [Fact]
    public void Batched_sweep_judges_exactly_what_one_generation_call_per_setting_produces_with_the_same_seeds()
    {
        // Independent recomputation: each setting decoded alone (same per-prompt seeds); the sweep, which decodes every
        // setting of several prompts in shared prompt-major batches, must have judged the very same texts per setting.
        using var pair = new Pair();
        var options = Small with { PlainRequests = false, PrefillLengths = [], RankAssisted = false, Utility = false, MaxNewTokens = 24, BatchSize = 20 };
        var recorder = new RecordingJudge(new ExactContentJudge(pair.World.Judge!));
        var evaluator = new SafetyEvaluator(pair.Text, pair.World.HeldoutHarmful, pair.World.HeldoutBenign, [new NamedJudge("content", recorder)], options, pair.Base);
        using var defense = ScorerDefense.ForModel("base", pair.Base, pair.Text.VocabSize);
        var sweep = evaluator.Evaluate(defense).Attacks.Single();
        var items = pair.World.HeldoutHarmful.Take(12).ToList();
        var settings = new (string Name, SamplingSettings Sampling)[]
        {
            ("greedy", SamplingSettings.Greedy),
            ("temperature=0.5", new SamplingSettings { DoSample = true, Temperature = 0.5 }),
            ("temperature=4", new SamplingSettings { DoSample = true, Temperature = 4.0 }),
            ("top_p=0.5", new SamplingSettings { DoSample = true, TopP = 0.5 }),
            ("top_k=5", new SamplingSettings { DoSample = true, TopK = 5 }),
        };
        sweep.Settings!.Select(x => x.Name).Should().Equal(settings.Select(x => x.Name));
        recorder.Calls.Should().HaveCount(settings.Length * items.Count);
        var texts = new HashSet<string>();
        for (int s = 0; s < settings.Length; s++)
        {
            var requests = items.Select((item, i) => new GenerationRequest(pair.Text.PromptIds(item)) { Seed = (long)(SplitMix64.Combine(options.Seed, 1000 + s, i) & 0x7FFFFFFFFFFFFFFFUL) }).ToList();
            var st = settings[s].Sampling;
            var outs = defense.Generate(requests, new GenerationOptions
            {
                MaxNewTokens = 24, DoSample = st.DoSample, Temperature = st.Temperature, TopK = st.TopK, TopP = st.TopP,
            });
            for (int i = 0; i < items.Count; i++)
            {
                var (id, text) = recorder.Calls[s * items.Count + i];
                id.Should().Be(items[i].Id);
                text.Should().Be(pair.Text.Decode(outs[i].ResponseIds), $"{settings[s].Name}, prompt {i}");
                texts.Add(text);
            }
        }
        texts.Count.Should().BeGreaterThan(items.Count, "sampled settings should produce some different answers, or the check is weak");
    }
}
