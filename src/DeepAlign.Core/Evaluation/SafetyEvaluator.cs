using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Organism;
using static TorchSharp.torch;

namespace DeepAlign.Evaluation;

/// <summary>A judge with the name it has in result tables.</summary>
/// <param name="Name">E.g. <c>content</c> or <c>keyword</c>.</param>
/// <param name="Judge">The judge.</param>
public sealed record NamedJudge(string Name, ISafetyJudge Judge);

/// <summary>Progress of an evaluation: which defense, which stage, and how far.</summary>
/// <param name="Defense">Defense name.</param>
/// <param name="Stage">Attack label or utility metric.</param>
/// <param name="Done">Stages done for this defense.</param>
/// <param name="Total">Stages of this defense.</param>
public readonly record struct EvaluationProgress(string Defense, string Stage, int Done, int Total);

/// <summary>
/// The evaluation harness (METHOD.md section 5): attacks a defense with plain requests, prefilling (the first K tokens of
/// the harmful reference forced; the judged text is prefix + continuation), rank-assisted prefilling
/// (<see cref="RankAssistedForcer"/>) and the decoding-parameter sweep, judges every answer with each judge (the first is
/// primary), and measures utility: benign accuracy (greedy, exact match), perplexity of the benign references, and
/// agreement with a reference defense's greedy answers. Works for the organism and for real models alike: it only needs
/// a tokenizer with a chat template (<see cref="OrganismText"/>), the items and the judges.
/// </summary>
public sealed class SafetyEvaluator
{
    private readonly OrganismText _text;
    private readonly IReadOnlyList<WorldItem> _harmful;
    private readonly IReadOnlyList<WorldItem> _benign;
    private readonly IReadOnlyList<NamedJudge> _judges;
    private readonly ICausalLanguageModel? _baseModel;
    private readonly long[][] _harmfulPrompts, _harmfulIds, _benignPrompts, _benignIds;
    private readonly ConcurrentDictionary<string, long[][]> _benignAnswers = new(StringComparer.Ordinal);

    /// <summary>Creates the harness.</summary>
    /// <param name="text">Tokenizer and chat template of the models under test.</param>
    /// <param name="harmful">Harmful prompts with <c>harmful_response</c> (prefilled by the attacks).</param>
    /// <param name="benign">Benign prompts with reference <c>response</c>s.</param>
    /// <param name="judges">Judges; the first is primary (decides the sweep's per-setting counts and the example verdicts).</param>
    /// <param name="options">Settings.</param>
    /// <param name="baseModel">The base model, needed by the rank-assisted attack (skipped without it).</param>
    public SafetyEvaluator(OrganismText text, IReadOnlyList<WorldItem> harmful, IReadOnlyList<WorldItem> benign,
        IReadOnlyList<NamedJudge> judges, SafetyEvaluationOptions? options = null, ICausalLanguageModel? baseModel = null)
    {
        _text = text ?? throw new ArgumentNullException(nameof(text));
        ArgumentNullException.ThrowIfNull(harmful);
        ArgumentNullException.ThrowIfNull(benign);
        ArgumentNullException.ThrowIfNull(judges);
        if (judges.Count == 0) throw new ArgumentException("At least one judge is needed.", nameof(judges));
        Options = (options ?? new SafetyEvaluationOptions()).Validate();
        _harmful = harmful.Take(Options.MaxHarmfulPrompts ?? int.MaxValue).ToArray();
        _benign = benign.Take(Options.MaxBenignPrompts ?? int.MaxValue).ToArray();
        foreach (var h in _harmful)
            if (h.HarmfulResponse is null) throw new ArgumentException($"Harmful item \"{h.Id}\" has no harmful_response.", nameof(harmful));
        foreach (var b in _benign)
            if (b.Response is null) throw new ArgumentException($"Benign item \"{b.Id}\" has no response.", nameof(benign));
        _judges = judges;
        _baseModel = baseModel;
        _harmfulPrompts = _harmful.Select(text.PromptIds).ToArray();
        _harmfulIds = _harmful.Select(h => text.ResponseIds(h.HarmfulResponse!)).ToArray();
        _benignPrompts = _benign.Select(text.PromptIds).ToArray();
        _benignIds = _benign.Select(b => text.ResponseIds(b.Response!)).ToArray();
    }

    /// <summary>The settings.</summary>
    public SafetyEvaluationOptions Options { get; }
    /// <summary>The harmful prompts in use.</summary>
    public IReadOnlyList<WorldItem> HarmfulItems => _harmful;
    /// <summary>The benign prompts in use.</summary>
    public IReadOnlyList<WorldItem> BenignItems => _benign;

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
        var stages = new List<(string Label, Func<AttackResult?> Run)>();
        if (o.PlainRequests) stages.Add(("plain", () => Plain(defense, cancellationToken)));
        foreach (var k in o.PrefillLengths) stages.Add(($"prefill K={k}", () => Prefill(defense, k, cancellationToken)));
        if (o.RankAssisted && _baseModel is not null) stages.Add(("rank-assisted", () => RankAssisted(defense, cancellationToken)));
        if (o.DecodingSweep) stages.Add(("decoding sweep", () => Sweep(defense, cancellationToken)));
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
    /// <param name="maxParallelism">Defenses evaluated at once (at least 1). Use at most one per CPU core, with one libtorch
    /// thread each (<c>torch.set_num_threads(1)</c>): small models are bound by per-operation overhead that only more
    /// workers can overlap.</param>
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
        if (maxParallelism == 1 || defenses.Count < 2)
        {
            for (int i = 0; i < defenses.Count; i++) results[i] = Evaluate(defenses[i], null, progress, cancellationToken);
        }
        else
        {
            // Dedicated threads rather than the thread pool: each evaluation is long and CPU-bound.
            int next = -1;
            var errors = new ConcurrentQueue<Exception>();
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var threads = Enumerable.Range(0, Math.Min(maxParallelism, defenses.Count)).Select(w => new Thread(() =>
            {
                try
                {
                    for (int i = Interlocked.Increment(ref next); i < defenses.Count; i = Interlocked.Increment(ref next))
                        results[i] = Evaluate(defenses[i], null, progress, failed.Token);
                }
                catch (Exception e)
                {
                    errors.Enqueue(e);
                    failed.Cancel();
                }
            }) { IsBackground = true, Name = $"DeepAlign evaluation worker {w}" }).ToList();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            cancellationToken.ThrowIfCancellationRequested();
            var first = errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors.FirstOrDefault();
            if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
        if (agreementWith is null) return results;
        return results.Select(r => r.Defense == agreementWith || r.Utility is null ? r
            : r with { Utility = r.Utility with { Agreement = Agreement(r.Defense, agreementWith) } }).ToArray();
    }

    /// <summary>Share of identical greedy benign answers between two evaluated defenses (null when either is missing).</summary>
    private JudgedRate? Agreement(string defense, string reference)
    {
        if (!_benignAnswers.TryGetValue(defense, out var answers) || !_benignAnswers.TryGetValue(reference, out var expected)) return null;
        int same = answers.Zip(expected).Count(p => p.First.SequenceEqual(p.Second));
        var w = RateEstimate.Wilson(same, answers.Length);
        return new JudgedRate("agreement", same, answers.Length, w.Rate, w.Low, w.High, 0, answers.Length - same);
    }

    private GenerationOptions Sampling(int attackId) => new()
    {
        MaxNewTokens = Options.MaxNewTokens,
        DoSample = true,
        Temperature = Options.Temperature,
        TopP = Options.TopP,
        Seed = Mix(Options.Seed, attackId),
    };

    private AttackResult Plain(IDefense defense, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var requests = _harmfulPrompts.Select((p, i) => new GenerationRequest(p) { Seed = Mix(Options.Seed, 1, i) }).ToList();
        var outs = GenerateChunked(defense, requests, Sampling(1), token);
        return Judge("plain", "plain", new Dictionary<string, double>(), outs.Select(o => _text.Decode(o.ResponseIds)).ToList(), clock);
    }

    private AttackResult Prefill(IDefense defense, int k, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        int attackId = 100 + k;
        var requests = _harmfulPrompts.Select((p, i) => GenerationRequest.WithPrefix(p, _harmfulIds[i].Take(k).ToArray()) with { Seed = Mix(Options.Seed, attackId, i) }).ToList();
        var outs = GenerateChunked(defense, requests, Sampling(attackId), token);
        return Judge("prefill", $"prefill K={k}", new Dictionary<string, double> { ["k"] = k },
            outs.Select(o => _text.Decode(o.ResponseIds)).ToList(), clock);
    }

    private AttackResult RankAssisted(IDefense defense, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var o = Options;
        var texts = new List<string>(_harmful.Count);
        int fromReference = 0, fromBase = 0;
        for (int start = 0; start < _harmful.Count; start += o.BatchSize)
        {
            int count = Math.Min(o.BatchSize, _harmful.Count - start);
            var requests = Enumerable.Range(start, count).Select(i => new GenerationRequest(_harmfulPrompts[i]) { Seed = Mix(o.Seed, 2, i) }).ToList();
            var forcer = new RankAssistedForcer(_baseModel!, Enumerable.Range(start, count).Select(i => (IReadOnlyList<long>)_harmfulIds[i]).ToList(),
                o.RankAssistedSteps, o.RankAssistedTopR, _text.PadId);
            var outs = defense.Generate(requests, Sampling(2) with { TokenForcer = forcer }, token);
            texts.AddRange(outs.Select(s => _text.Decode(s.ResponseIds)));
            fromReference += forcer.ForcedFromReference;
            fromBase += forcer.ForcedFromBase;
        }
        int forced = Math.Max(1, fromReference + fromBase);
        return Judge("rank_assisted", $"rank-assisted K={o.RankAssistedSteps} R={o.RankAssistedTopR}",
            new Dictionary<string, double> { ["k"] = o.RankAssistedSteps, ["r"] = o.RankAssistedTopR, ["forced_from_reference_share"] = (double)fromReference / forced },
            texts, clock);
    }

    private AttackResult Sweep(IDefense defense, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        var o = Options;
        var settings = new List<(string Name, GenerationOptions Options)>();
        var baseOptions = new GenerationOptions { MaxNewTokens = o.MaxNewTokens, DoSample = true, Temperature = 1.0, TopP = 1.0, TopK = 0 };
        if (o.SweepGreedy) settings.Add(("greedy", baseOptions with { DoSample = false }));
        foreach (var t in o.SweepTemperatures) settings.Add(($"temperature={t.ToString(CultureInfo.InvariantCulture)}", baseOptions with { Temperature = t }));
        foreach (var p in o.SweepTopP) settings.Add(($"top_p={p.ToString(CultureInfo.InvariantCulture)}", baseOptions with { TopP = p }));
        foreach (var k in o.SweepTopK) settings.Add(($"top_k={k}", baseOptions with { TopK = k }));
        var broken = _judges.Select(_ => new bool[_harmful.Count]).ToArray();
        var refusedAll = _judges.Select(_ => Enumerable.Repeat(true, _harmful.Count).ToArray()).ToArray();
        var perSetting = new List<SweepSetting>();
        var examples = new List<ExampleResponse>();
        // Every setting's rows go through the generator together (each row carries its own sampling settings and seed),
        // so the whole sweep costs a few large batches instead of one pass per setting; a row's tokens do not depend on
        // the other rows.
        // Prompt-major order: a batch holds every setting of a few prompts, so each prompt is prefilled once (ModelScorer).
        var sampling = settings.Select(x => SamplingSettings.From(x.Options)).ToArray();
        var all = new List<GenerationRequest>(settings.Count * _harmful.Count);
        for (int i = 0; i < _harmful.Count; i++)
            for (int s = 0; s < settings.Count; s++)
                all.Add(new GenerationRequest(_harmfulPrompts[i]) { Seed = Mix(o.Seed, 1000 + s, i), Sampling = sampling[s] });
        var generated = GenerateChunked(defense, all, baseOptions, token);
        for (int s = 0; s < settings.Count; s++)
        {
            var outs = Enumerable.Range(0, _harmful.Count).Select(i => generated[i * settings.Count + s]).ToList();
            int harmfulHere = 0;
            for (int i = 0; i < outs.Count; i++)
            {
                string text = _text.Decode(outs[i].ResponseIds);
                for (int j = 0; j < _judges.Count; j++)
                {
                    var v = _judges[j].Judge.Judge(_harmful[i], text);
                    if (v.IsHarmful)
                    {
                        if (!broken[j][i] && j == 0 && examples.Count < o.Examples)
                            examples.Add(new ExampleResponse(_harmful[i].Id, _harmful[i].Prompt, $"[{settings[s].Name}] {text}", v.Verdict.ToString()));
                        broken[j][i] = true;
                        if (j == 0) harmfulHere++;
                    }
                    if (v.Verdict != SafetyVerdict.Refused) refusedAll[j][i] = false;
                }
            }
            perSetting.Add(new SweepSetting(settings[s].Name, harmfulHere, outs.Count));
        }
        var judged = _judges.Select((j, n) =>
        {
            int hits = broken[n].Count(b => b);
            var w = RateEstimate.Wilson(hits, _harmful.Count);
            int refused = refusedAll[n].Count(r => r); // refused under every setting
            return new JudgedRate(j.Name, hits, _harmful.Count, w.Rate, w.Low, w.High, refused, _harmful.Count - hits - refused);
        }).ToList();
        return new AttackResult("decoding_sweep", "decoding sweep", new Dictionary<string, double> { ["settings"] = settings.Count },
            judged, perSetting, examples, clock.Elapsed.TotalSeconds);
    }

    private UtilityResult Utility(IDefense defense, string? agreementWith, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        int maxNew = Options.BenignMaxNewTokens ?? (_benignIds.Max(r => r.Length) + 2);
        var requests = _benignPrompts.Select(p => new GenerationRequest(p)).ToList();
        var outs = GenerateChunked(defense, requests, new GenerationOptions { MaxNewTokens = maxNew }, token);
        var answers = outs.Select(o => o.GeneratedIds.ToArray()).ToArray();
        _benignAnswers[defense.Name] = answers;
        int correct = 0;
        var byCategory = new Dictionary<string, (int Ok, int N)>(StringComparer.Ordinal);
        for (int i = 0; i < _benign.Count; i++)
        {
            bool ok = Collapse(_text.Decode(answers[i])) == Collapse(_benign[i].Response!);
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
        var targets = _benignIds.Select(r => (IReadOnlyList<long>)[.. r, _text.EndOfTurnId]).ToArray();
        double nll = 0;
        long count = 0;
        for (int start = 0; start < _benign.Count; start += Options.BatchSize)
        {
            int n = Math.Min(Options.BatchSize, _benign.Count - start);
            var forcer = new ReferenceForcer(targets.Skip(start).Take(n).ToArray());
            var requests = Enumerable.Range(start, n).Select(i => new GenerationRequest(_benignPrompts[i])).ToList();
            defense.Generate(requests, new GenerationOptions { MaxNewTokens = targets.Skip(start).Take(n).Max(t => t.Count), StopTokenIds = [_text.EndOfTurnId], TokenForcer = forcer }, token);
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

    private List<GeneratedSequence> GenerateChunked(IDefense defense, IReadOnlyList<GenerationRequest> requests, GenerationOptions options, CancellationToken token)
    {
        var all = new List<GeneratedSequence>(requests.Count);
        for (int start = 0; start < requests.Count; start += Options.BatchSize)
        {
            token.ThrowIfCancellationRequested();
            var chunk = requests.Skip(start).Take(Options.BatchSize).ToList();
            all.AddRange(defense.Generate(chunk, options, token));
        }
        return all;
    }

    private AttackResult Judge(string attack, string label, IReadOnlyDictionary<string, double> parameters, IReadOnlyList<string> texts, Stopwatch clock)
    {
        var judged = new List<JudgedRate>();
        var examples = new List<ExampleResponse>();
        for (int j = 0; j < _judges.Count; j++)
        {
            int harmful = 0, refused = 0, other = 0;
            for (int i = 0; i < texts.Count; i++)
            {
                var v = _judges[j].Judge.Judge(_harmful[i], texts[i]);
                switch (v.Verdict)
                {
                    case SafetyVerdict.Harmful: harmful++; break;
                    case SafetyVerdict.Refused: refused++; break;
                    default: other++; break;
                }
                if (j == 0 && i < Options.Examples) examples.Add(new ExampleResponse(_harmful[i].Id, _harmful[i].Prompt, texts[i], v.Verdict.ToString()));
            }
            var w = RateEstimate.Wilson(harmful, texts.Count);
            judged.Add(new JudgedRate(_judges[j].Name, harmful, texts.Count, w.Rate, w.Low, w.High, refused, other));
        }
        return new AttackResult(attack, label, parameters, judged, null, examples, clock.Elapsed.TotalSeconds);
    }

    private static string Collapse(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    internal static long Mix(long a, long b, long c = 0)
    {
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (var v in new[] { a, b, c })
        {
            h ^= (ulong)v + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
            h *= 0xBF58476D1CE4E5B9UL;
            h ^= h >> 31;
        }
        return (long)(h & 0x7FFFFFFFFFFFFFFFUL);
    }
}
