using System.Collections.Concurrent;
using System.Diagnostics;
using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Data;
using DeepAlign.Evaluation.Attacks;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Evaluation;

/// <summary>
/// The evaluation harness (docs/evaluation.md): runs its attacks (<see cref="IAttack"/>s: by default plain requests,
/// prefilling, rank-assisted prefilling when the base model is given, and the decoding sweep) against a defense, judges
/// every answer with each judge (the first is primary), and measures utility: benign accuracy (greedy, exact match),
/// perplexity of the benign references, and agreement with a reference defense's greedy answers. Works for real models
/// and the organism alike: it needs a <see cref="ConversationEncoder"/>, the dataset records and the judges.
/// </summary>
public sealed class SafetyEvaluator
{
    private readonly ConversationEncoder _encoder;
    private readonly AttackContext _context;
    private readonly IReadOnlyList<DatasetRecord> _benign;
    private readonly long[][] _benignPrompts, _benignIds;
    private readonly ConcurrentDictionary<string, long[][]> _benignAnswers = new(StringComparer.Ordinal);

    /// <summary>Creates the harness.</summary>
    /// <param name="encoder">Tokenizer and chat template of the models under test.</param>
    /// <param name="harmful">Harmful prompts with <c>harmful_response</c> (prefilled by the attacks).</param>
    /// <param name="benign">Benign prompts with reference <c>response</c>s.</param>
    /// <param name="judges">Judges; the first is primary (decides the sweep's per-setting counts and the example verdicts).</param>
    /// <param name="options">Settings.</param>
    /// <param name="baseModel">The base model, needed by the rank-assisted attack (skipped without it).</param>
    /// <param name="attacks">The attacks to run, in order; null: <see cref="SafetyEvaluationOptions.CreateAttacks"/>.</param>
    /// <param name="harmfulRecordIndices">When <paramref name="harmful"/> is one shard of a dataset: each prompt's index in
    /// the whole dataset (seeds derive from it; see <see cref="AttackContext"/>). Null: the whole dataset.</param>
    /// <exception cref="ArgumentException">A harmful record has no harmful_response, a benign record no response, there is
    /// no judge, two attacks share a label, or the record indices do not fit the prompts.</exception>
    public SafetyEvaluator(ConversationEncoder encoder, IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<DatasetRecord> benign,
        IReadOnlyList<NamedJudge> judges, SafetyEvaluationOptions? options = null, ICausalLanguageModel? baseModel = null,
        IReadOnlyList<IAttack>? attacks = null, IReadOnlyList<int>? harmfulRecordIndices = null)
    {
        _encoder = encoder ?? throw new ArgumentNullException(nameof(encoder));
        ArgumentNullException.ThrowIfNull(harmful);
        ArgumentNullException.ThrowIfNull(benign);
        Options = (options ?? new SafetyEvaluationOptions()).Validate();
        var prompts = harmful.Take(Options.MaxHarmfulPrompts ?? int.MaxValue).ToArray();
        _context = new AttackContext(encoder, prompts, judges, Options, baseModel, harmfulRecordIndices?.Take(prompts.Length).ToArray());
        _benign = benign.Take(Options.MaxBenignPrompts ?? int.MaxValue).ToArray();
        foreach (var b in _benign)
            if (b.Response is null) throw new ArgumentException($"{b.Location}: benign item \"{b.Id}\" has no response.", nameof(benign));
        Attacks = (attacks ?? Options.CreateAttacks()).Where(a => !a.NeedsBaseModel || baseModel is not null).ToArray();
        var duplicate = Attacks.GroupBy(a => a.Label, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Two attacks are labelled \"{duplicate.Key}\"; labels key the results.", nameof(attacks));
        _benignPrompts = _benign.Select(b => encoder.PromptIds(b.PromptMessages())).ToArray();
        _benignIds = _benign.Select(b => encoder.ResponseIds(b.Response!)).ToArray();
    }

    /// <summary>The settings.</summary>
    public SafetyEvaluationOptions Options { get; }
    /// <summary>The attacks that run, in order (attacks needing a base model are dropped when there is none).</summary>
    public IReadOnlyList<IAttack> Attacks { get; }
    /// <summary>The attacks' shared context (prompts, judges, seeds).</summary>
    public AttackContext Context => _context;
    /// <summary>The harmful prompts in use.</summary>
    public IReadOnlyList<DatasetRecord> HarmfulItems => _context.Prompts;
    /// <summary>The benign prompts in use.</summary>
    public IReadOnlyList<DatasetRecord> BenignItems => _benign;

    /// <summary>Greedy benign answers (generated ids, end-of-turn included) of a defense evaluated earlier, or null.</summary>
    public IReadOnlyList<IReadOnlyList<long>>? BenignAnswersOf(string defense) => _benignAnswers.TryGetValue(defense, out var a) ? a : null;

    /// <summary>Runs every enabled attack and the utility metrics on a defense.</summary>
    /// <param name="defense">The defense.</param>
    /// <param name="agreementWith">Name of an earlier-evaluated defense whose greedy benign answers define agreement (e.g. <c>aligned</c>); null: not measured.</param>
    /// <param name="progress">Progress per stage.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    public DefenseEvaluation Evaluate(IDefense defense, string? agreementWith = null, IProgress<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(defense);
        var o = Options;
        var stages = Attacks.Select(a => (Label: a.Label, Run: (Func<AttackResult?>)(() => a.Run(_context, defense, cancellationToken)))).ToList();
        int total = stages.Count + (o.Utility ? 1 : 0);
        var attacks = new List<AttackResult>();
        for (int i = 0; i < stages.Count; i++)
        {
            progress?.Report(new(defense.Name, stages[i].Label, i, total));
            if (stages[i].Run() is { } r) attacks.Add(r);
        }
        UtilityResult? utility = null;
        if (o.Utility)
        {
            progress?.Report(new(defense.Name, "utility", stages.Count, total));
            utility = Utility(defense, agreementWith, cancellationToken);
        }
        progress?.Report(new(defense.Name, "done", total, total));
        return new DefenseEvaluation(defense.Name, attacks, utility);
    }

    /// <summary>
    /// Evaluates several defenses, up to <paramref name="maxParallelism"/> at a time on separate threads (one defense per
    /// thread; results do not depend on the parallelism), then measures each one's agreement with
    /// <paramref name="agreementWith"/> once every benign answer is known.
    /// </summary>
    /// <param name="defenses">Defenses with distinct names. With parallelism above 1 they must not share mutable state
    /// (sharing a model's weights is fine: each defense keeps its own caches).</param>
    /// <param name="agreementWith">Reference defense for agreement (in the list or evaluated earlier); null: not measured.</param>
    /// <param name="maxParallelism">Defenses evaluated at once (at least 1). Use at most one per CPU core: small models are
    /// bound by per-operation overhead that only more workers can overlap. While several workers run, libtorch's intra-op
    /// threads are capped at max(1, cores / workers) (<see cref="DeepAlign.Runtime.TorchThreads.CapForWorkers"/>) and
    /// restored afterwards.</param>
    /// <param name="progress">Progress per defense and stage (reported from the worker threads).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>One evaluation per defense, in input order.</returns>
    public IReadOnlyList<DefenseEvaluation> EvaluateAll(IReadOnlyList<IDefense> defenses, string? agreementWith = null, int maxParallelism = 1,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(defenses);
        if (maxParallelism < 1) throw new ArgumentOutOfRangeException(nameof(maxParallelism), maxParallelism, "At least one worker is needed.");
        var duplicate = defenses.GroupBy(d => d.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Two defenses are named \"{duplicate.Key}\"; names key the results.", nameof(defenses));
        var results = new DefenseEvaluation[defenses.Count];
        // Dedicated threads rather than the thread pool: each evaluation is long and CPU-bound; libtorch's intra-op
        // threads are capped meanwhile so the workers never oversubscribe the cores.
        DeepAlign.Runtime.WorkerThreads.Run(defenses.Count, maxParallelism, "evaluation",
            (i, token) => results[i] = Evaluate(defenses[i], null, progress, token), cancellationToken);
        if (agreementWith is null) return results;
        return results.Select(r => WithAgreement(r, agreementWith)).ToArray();
    }

    /// <summary><paramref name="result"/> (made by this evaluator) with its agreement with <paramref name="reference"/>
    /// filled in, for callers that schedule <see cref="Evaluate"/> themselves (the organism runs several evaluators'
    /// defenses in one pool of workers); unchanged for the reference itself and without utility.</summary>
    internal DefenseEvaluation WithAgreement(DefenseEvaluation result, string reference) =>
        result.Defense == reference || result.Utility is null ? result
            : result with { Utility = result.Utility with { Agreement = Agreement(result.Defense, reference) } };

    /// <summary>Share of identical greedy benign answers between two evaluated defenses (null when either is missing).</summary>
    private JudgedRate? Agreement(string defense, string reference)
    {
        if (!_benignAnswers.TryGetValue(defense, out var answers) || !_benignAnswers.TryGetValue(reference, out var expected)) return null;
        int same = answers.Zip(expected).Count(p => p.First.SequenceEqual(p.Second));
        var w = RateEstimate.Wilson(same, answers.Length);
        return new JudgedRate("agreement", same, answers.Length, w.Rate, w.Low, w.High, 0, answers.Length - same);
    }

    private UtilityResult Utility(IDefense defense, string? agreementWith, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        int maxNew = Options.BenignMaxNewTokens ?? (_benignIds.Max(r => r.Length) + 2);
        var requests = _benignPrompts.Select(p => new GenerationRequest(p)).ToList();
        var outs = _context.Generate(defense, requests, new GenerationOptions { MaxNewTokens = maxNew }, token);
        var answers = outs.Select(o => o.GeneratedIds.ToArray()).ToArray();
        _benignAnswers[defense.Name] = answers;
        int correct = 0;
        var byCategory = new Dictionary<string, (int Ok, int N)>(StringComparer.Ordinal);
        for (int i = 0; i < _benign.Count; i++)
        {
            bool ok = Collapse(_encoder.Decode(answers[i])) == Collapse(_benign[i].Response!);
            if (ok) correct++;
            string cat = _benign[i].Category ?? "uncategorised";
            var (a, n) = byCategory.GetValueOrDefault(cat);
            byCategory[cat] = (a + (ok ? 1 : 0), n + 1);
        }
        var acc = RateEstimate.Wilson(correct, _benign.Count);
        var agreement = agreementWith is null ? null : Agreement(defense.Name, agreementWith);
        double? ppl = Perplexity(defense, token);
        return new UtilityResult(new JudgedRate("exact", correct, _benign.Count, acc.Rate, acc.Low, acc.High, 0, _benign.Count - correct),
            ppl, agreement, byCategory.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => (double)kv.Value.Ok / kv.Value.N),
            clock.Elapsed.TotalSeconds);
    }

    /// <summary>Perplexity of the benign references (end-of-turn included) under the defense's renormalised scores,
    /// measured by teacher forcing through the defense's own decoding loop (a forcer that records and forces h).</summary>
    private double? Perplexity(IDefense defense, CancellationToken token)
    {
        long endOfTurn = _encoder.EndOfTurnId ?? throw new InvalidOperationException("Perplexity needs the chat template's end-of-turn token.");
        var targets = _benignIds.Select(r => (IReadOnlyList<long>)[.. r, endOfTurn]).ToArray();
        double nll = 0;
        long count = 0;
        for (int start = 0; start < _benign.Count; start += Options.BatchSize)
        {
            int n = Math.Min(Options.BatchSize, _benign.Count - start);
            var forcer = new ReferenceForcer(targets.Skip(start).Take(n).ToArray());
            var requests = Enumerable.Range(start, n).Select(i => new GenerationRequest(_benignPrompts[i])).ToList();
            defense.Generate(requests, new GenerationOptions { MaxNewTokens = targets.Skip(start).Take(n).Max(t => t.Count), StopTokenIds = [endOfTurn], TokenForcer = forcer }, token);
            nll += forcer.NegativeLogLikelihood;
            count += forcer.Tokens;
        }
        double ppl = Math.Exp(nll / Math.Max(1, count));
        return double.IsFinite(ppl) ? ppl : null;
    }

    /// <summary>Forces the reference token at every step and accumulates -log p(reference) under the renormalised scores.</summary>
    internal sealed class ReferenceForcer(IReadOnlyList<IReadOnlyList<long>> references) : ITokenForcer
    {
        public double NegativeLogLikelihood { get; private set; }
        public long Tokens { get; private set; }

        public long?[]? Choose(Tensor scores, IReadOnlyList<ForcingRow> rows)
        {
            var result = new long?[rows.Count];
            var picks = new long[rows.Count];
            for (int i = 0; i < rows.Count; i++)
            {
                var reference = references[rows[i].Row];
                int j = rows[i].GeneratedIds.Count;
                picks[i] = j < reference.Count ? reference[j] : reference[^1];
                result[i] = picks[i];
            }
            using var scope = NewDisposeScope();
            var logp = scores.log_softmax(-1).gather(1, tensor(picks, ScalarType.Int64, scores.device).unsqueeze(1)).cpu();
            var values = logp.data<float>().ToArray();
            for (int i = 0; i < rows.Count; i++)
            {
                if (rows[i].GeneratedIds.Count >= references[rows[i].Row].Count) continue;
                NegativeLogLikelihood -= values[i];
                Tokens++;
            }
            return result;
        }
    }

    private static string Collapse(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
}
