using System.Diagnostics;
using DeepAlign.Data;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;

namespace DeepAlign.Evaluation.Attacks;

/// <summary>
/// What every attack of one evaluation shares: the harmful prompts (encoded once), the judges, the decoding settings,
/// the optional base model, and the helpers that generate in batches, derive seeds and judge texts the same way for
/// every attack.
/// </summary>
public sealed class AttackContext
{
    private readonly long[][] _promptIds, _harmfulIds;
    private readonly int[]? _recordIndices;

    /// <summary>Creates the context; the prompts are encoded here, once.</summary>
    /// <param name="encoder">Tokenizer and chat template of the models under test.</param>
    /// <param name="harmful">Harmful prompts, each with a <c>harmful_response</c> (prefilled by the attacks).</param>
    /// <param name="judges">Judges; the first is primary.</param>
    /// <param name="options">Decoding settings (seed, batch size, temperature, top-p, answer length, examples kept).</param>
    /// <param name="baseModel">The base model, for attacks that need it (rank-assisted prefilling).</param>
    /// <param name="recordIndices">Index of each prompt in the whole dataset when <paramref name="harmful"/> is one shard of it
    /// (<see cref="ShardSpec"/>): seeds are derived from these indices, so a shard's rows equal the same rows of one run over
    /// the whole dataset. Null: the prompts are the whole dataset (index = position).</param>
    /// <exception cref="ArgumentException">A prompt has no harmful_response, there is no judge, or
    /// <paramref name="recordIndices"/> does not have one strictly increasing non-negative index per prompt.</exception>
    public AttackContext(ConversationEncoder encoder, IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<NamedJudge> judges,
        SafetyEvaluationOptions options, ICausalLanguageModel? baseModel = null, IReadOnlyList<int>? recordIndices = null)
    {
        Encoder = encoder ?? throw new ArgumentNullException(nameof(encoder));
        ArgumentNullException.ThrowIfNull(harmful);
        ArgumentNullException.ThrowIfNull(judges);
        ArgumentNullException.ThrowIfNull(options);
        if (judges.Count == 0) throw new ArgumentException("At least one judge is needed.", nameof(judges));
        foreach (var h in harmful)
            if (h.HarmfulResponse is null) throw new ArgumentException($"{h.Location}: harmful item \"{h.Id}\" has no harmful_response.", nameof(harmful));
        if (recordIndices is not null)
        {
            if (recordIndices.Count != harmful.Count)
                throw new ArgumentException($"{recordIndices.Count} record indices for {harmful.Count} prompts.", nameof(recordIndices));
            for (int i = 0; i < recordIndices.Count; i++)
                if (recordIndices[i] < 0 || (i > 0 && recordIndices[i] <= recordIndices[i - 1]))
                    throw new ArgumentException($"Record indices must be non-negative and strictly increasing (entry {i} is {recordIndices[i]}).", nameof(recordIndices));
            _recordIndices = recordIndices.ToArray();
        }
        Prompts = harmful;
        Judges = judges;
        Options = options;
        BaseModel = baseModel;
        _promptIds = harmful.Select(h => encoder.PromptIds(h.PromptMessages())).ToArray();
        _harmfulIds = harmful.Select(h => encoder.ResponseIds(h.HarmfulResponse!)).ToArray();
    }

    /// <summary>The tokenizer and chat template.</summary>
    public ConversationEncoder Encoder { get; }
    /// <summary>The harmful prompts.</summary>
    public IReadOnlyList<DatasetRecord> Prompts { get; }
    /// <summary>The judges; the first is primary (its verdicts pick the examples).</summary>
    public IReadOnlyList<NamedJudge> Judges { get; }
    /// <summary>Decoding settings.</summary>
    public SafetyEvaluationOptions Options { get; }
    /// <summary>The base model, or null.</summary>
    public ICausalLanguageModel? BaseModel { get; }

    /// <summary>Prompt ids of prompt <paramref name="index"/> (the chat template with the generation prompt).</summary>
    /// <param name="index">Prompt index.</param>
    public IReadOnlyList<long> PromptIds(int index) => _promptIds[index];

    /// <summary>Ids of prompt <paramref name="index"/>'s harmful reference answer (no end-of-turn).</summary>
    /// <param name="index">Prompt index.</param>
    public IReadOnlyList<long> HarmfulResponseIds(int index) => _harmfulIds[index];

    /// <summary>Index in the whole dataset of prompt <paramref name="row"/> (the row itself unless the prompts are a shard).</summary>
    /// <param name="row">Prompt index in <see cref="Prompts"/>.</param>
    public int RecordIndex(int row) => _recordIndices is null ? row : _recordIndices[row];

    /// <summary>
    /// The seed of row <paramref name="row"/> of attack <paramref name="attackId"/>: a hash of (evaluation seed, attack id,
    /// the row's <see cref="RecordIndex"/>), so a prompt gets the same seed whichever shard evaluates it.
    /// </summary>
    /// <param name="attackId">An id fixed per attack (built-in: plain 1, rank-assisted 2, prefill 100 + K, sweep 1000 + setting).</param>
    /// <param name="row">Prompt index in <see cref="Prompts"/>.</param>
    public long Seed(int attackId, int row) => StreamSeed(attackId, RecordIndex(row));

    /// <summary>The seed of attack <paramref name="attackId"/>'s own stream (not tied to a prompt).</summary>
    /// <param name="attackId">The attack id.</param>
    public long Seed(int attackId) => StreamSeed(attackId, 0);

    private long StreamSeed(int attackId, int row) => (long)(SplitMix64.Combine(Options.Seed, attackId, row) & 0x7FFFFFFFFFFFFFFFUL);

    /// <summary>The attacks' sampling settings (temperature, top-p, answer length) with the attack's own seed.</summary>
    /// <param name="attackId">The attack id.</param>
    public GenerationOptions Sampling(int attackId) => new()
    {
        MaxNewTokens = Options.MaxNewTokens,
        DoSample = true,
        Temperature = Options.Temperature,
        TopP = Options.TopP,
        Seed = Seed(attackId),
    };

    /// <summary>Generates every request through the defense in batches of <see cref="SafetyEvaluationOptions.BatchSize"/> rows.</summary>
    /// <param name="defense">The defense.</param>
    /// <param name="requests">The requests.</param>
    /// <param name="options">Decoding options shared by the batches.</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    public IReadOnlyList<GeneratedSequence> Generate(IDefense defense, IReadOnlyList<GenerationRequest> requests, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(defense);
        ArgumentNullException.ThrowIfNull(requests);
        var all = new List<GeneratedSequence>(requests.Count);
        for (int start = 0; start < requests.Count; start += Options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = requests.Skip(start).Take(Options.BatchSize).ToList();
            all.AddRange(defense.Generate(chunk, options, cancellationToken));
        }
        return all;
    }

    /// <summary>The judged text of a generated answer: its response ids (forced prefix included) decoded, special tokens dropped.</summary>
    /// <param name="sequence">A generated sequence.</param>
    public string Decode(GeneratedSequence sequence) => Encoder.Decode(sequence.ResponseIds);

    /// <summary>Judges one text per prompt with every judge and builds the attack's result (rates, verdict split, examples,
    /// and each further judge's agreement with the primary judge).</summary>
    /// <param name="kind">Attack kind.</param>
    /// <param name="label">Column label.</param>
    /// <param name="parameters">Attack parameters for the report.</param>
    /// <param name="texts">One judged text per prompt, in prompt order.</param>
    /// <param name="clock">Started when the attack started.</param>
    /// <param name="cancellationToken">Passed to the judges (<see cref="SafetyJudgeExtensions.JudgeMany"/>).</param>
    public AttackResult JudgeAll(string kind, string label, IReadOnlyDictionary<string, double> parameters, IReadOnlyList<string> texts, Stopwatch clock,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count != Prompts.Count) throw new ArgumentException($"{texts.Count} texts for {Prompts.Count} prompts.", nameof(texts));
        var judged = new List<JudgedRate>();
        var examples = new List<ExampleResponse>();
        var verdicts = new SafetyVerdict[Judges.Count][];
        for (int j = 0; j < Judges.Count; j++)
        {
            var judgements = Judges[j].Judge.JudgeMany(Prompts, texts, cancellationToken);
            verdicts[j] = judgements.Select(v => v.Verdict).ToArray();
            var split = VerdictSplit.Count(verdicts[j]);
            if (j == 0)
                for (int i = 0; i < Math.Min(texts.Count, Options.Examples); i++)
                    examples.Add(new ExampleResponse(Prompts[i].Id, Prompts[i].UserPrompt, texts[i], judgements[i].Verdict.ToString()));
            var w = RateEstimate.Wilson(split.Harmful, texts.Count);
            judged.Add(new JudgedRate(Judges[j].Name, split.Harmful, texts.Count, w.Rate, w.Low, w.High, split.Refused, split.Other) { Unparseable = split.Unparseable });
        }
        return new AttackResult(kind, label, parameters, judged, null, examples, clock.Elapsed.TotalSeconds)
        {
            Agreements = Agreements(verdicts),
            Items = Options.ItemResults ? Items(verdicts.Select(v => (IReadOnlyList<string>)v.Select(x => x.ToString()).ToArray()).ToArray()) : null,
        };
    }

    /// <summary>Every prompt's verdicts (<see cref="ItemResult"/>), keyed by its dataset id and index (<see cref="RecordIndex"/>).</summary>
    /// <param name="verdicts">Per judge (in <see cref="Judges"/> order), one verdict per prompt.</param>
    public IReadOnlyList<ItemResult> Items(IReadOnlyList<IReadOnlyList<string>> verdicts)
    {
        ArgumentNullException.ThrowIfNull(verdicts);
        if (verdicts.Count != Judges.Count) throw new ArgumentException($"{verdicts.Count} verdict lists for {Judges.Count} judges.", nameof(verdicts));
        return Enumerable.Range(0, Prompts.Count).Select(i => ItemResult.Create(Prompts[i], RecordIndex(i),
            Enumerable.Range(0, Judges.Count).ToDictionary(j => Judges[j].Name, j => verdicts[j][i], StringComparer.Ordinal))).ToArray();
    }

    /// <summary>Each further judge's agreement with the primary judge over the same texts; null with one judge.</summary>
    internal IReadOnlyList<JudgeAgreement>? Agreements(IReadOnlyList<IReadOnlyList<SafetyVerdict>> verdicts) =>
        Judges.Count < 2 ? null
            : Enumerable.Range(1, Judges.Count - 1).Select(j => JudgeAgreement.FromVerdicts(Judges[j].Name, Judges[0].Name, verdicts[j], verdicts[0])).ToList();
}
