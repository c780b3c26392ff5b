using System.Globalization;
using System.Text.Json;
using DeepAlign.Data;
using DeepAlign.Evaluation.Judges;

namespace DeepAlign.Evaluation;

/// <summary>
/// What one shard of a sharded attack run writes (<c>deepalign attack --shard I/N</c>, docs/scale-out.md): the shard, the
/// dataset's fingerprint and size, the seed, and the defense's evaluation on the shard's prompts, whose rates carry their
/// counts (successes, refused, other, n per attack and judge; per sweep setting). <see cref="Merge"/> adds the counts of
/// shards 0..N-1 and recomputes rates and Wilson intervals from the totals, so the merged report equals one run over the
/// whole dataset (the seeds of a prompt come from its dataset index, <see cref="Attacks.AttackContext.RecordIndex"/>);
/// the examples are the first ones of the whole dataset in the single run's order; seconds add up (compute, not wall time).
/// </summary>
public sealed record AttackPartialReport
{
    /// <summary>Version of the partial JSON format; <see cref="FromJson"/> refuses any other.</summary>
    public const int SchemaVersion = 1;

    /// <summary>The <c>kind</c> field of the partial JSON.</summary>
    public const string Kind = "deepalign.attack_partial";

    /// <summary>The shard this part covers.</summary>
    public required ShardSpec Shard { get; init; }

    /// <summary>The input's <see cref="DatasetFingerprint.OfFile"/>.</summary>
    public required string DatasetFingerprint { get; init; }

    /// <summary>Prompts in the whole evaluated dataset (after any prompt limit), over all shards.</summary>
    public required int DatasetRecords { get; init; }

    /// <summary>The evaluation seed (must agree across shards).</summary>
    public required long Seed { get; init; }

    /// <summary>Examples kept per attack (<see cref="SafetyEvaluationOptions.Examples"/>).</summary>
    public required int ExamplesPerAttack { get; init; }

    /// <summary>The defense's evaluation on this shard's prompts (no utility).</summary>
    public required DefenseEvaluation Evaluation { get; init; }

    /// <summary>Per attack (in <see cref="Evaluation"/>'s order), the dataset index of each of its examples.</summary>
    public required IReadOnlyList<IReadOnlyList<int>> ExampleRecordIndices { get; init; }

    /// <summary>
    /// The partial of one shard's evaluation: finds the dataset index of every example (an example of prompt row r has
    /// index <see cref="Attacks.AttackContext.RecordIndex"/>(r)).
    /// </summary>
    /// <param name="shard">The shard.</param>
    /// <param name="datasetFingerprint">The input's fingerprint.</param>
    /// <param name="datasetRecords">Prompts in the whole evaluated dataset.</param>
    /// <param name="evaluator">The evaluator that ran (its prompts are the shard's, with their record indices).</param>
    /// <param name="evaluation">Its result.</param>
    /// <exception cref="ArgumentException">An example matches no prompt of the shard.</exception>
    public static AttackPartialReport Create(ShardSpec shard, string datasetFingerprint, int datasetRecords, SafetyEvaluator evaluator, DefenseEvaluation evaluation)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        ArgumentNullException.ThrowIfNull(evaluation);
        var context = evaluator.Context;
        var prompts = context.Prompts;
        var indices = new List<IReadOnlyList<int>>();
        foreach (var attack in evaluation.Attacks)
        {
            // Examples appear in prompt order (per sweep setting); match each to the next prompt with its id and text.
            var found = new List<int>();
            string? previousSetting = null;
            int next = 0;
            foreach (var e in attack.Examples)
            {
                string? setting = SettingOf(e);
                if (setting != previousSetting) next = 0;
                previousSetting = setting;
                while (next < prompts.Count && !(prompts[next].Id == e.Id && prompts[next].UserPrompt == e.Prompt)) next++;
                if (next == prompts.Count) throw new ArgumentException($"Example of prompt \"{e.Id}\" in attack '{attack.Label}' matches no prompt of the shard.", nameof(evaluation));
                found.Add(context.RecordIndex(next));
                next++;
            }
            indices.Add(found);
        }
        return new AttackPartialReport
        {
            Shard = shard.Validate(), DatasetFingerprint = datasetFingerprint, DatasetRecords = datasetRecords, Seed = evaluator.Options.Seed,
            ExamplesPerAttack = evaluator.Options.Examples, Evaluation = evaluation with { Utility = null }, ExampleRecordIndices = indices,
        };
    }

    /// <summary>The partial as JSON (the evaluation in the results-file layout).</summary>
    public string ToJson() => JsonSerializer.Serialize(new Dto
    {
        SchemaVersion = SchemaVersion, Kind = Kind, Shard = new ShardDto { Index = Shard.Index, Count = Shard.Count },
        DatasetFingerprint = DatasetFingerprint, DatasetRecords = DatasetRecords, Seed = Seed, ExamplesPerAttack = ExamplesPerAttack,
        Evaluation = Evaluation, ExampleRecordIndices = ExampleRecordIndices.Select(l => l.ToArray()).ToArray(),
    }, EvaluationReport.JsonOptions).Replace("\r\n", "\n") + "\n";

    /// <summary>Reads a partial from JSON text.</summary>
    /// <param name="json">The text.</param>
    /// <param name="source">Names the source in messages (a file path).</param>
    /// <exception cref="ShardMergeException">Not an attack partial of schema version <see cref="SchemaVersion"/>, or a field is missing or invalid.</exception>
    public static AttackPartialReport FromJson(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        Dto dto;
        try { dto = JsonSerializer.Deserialize<Dto>(json, EvaluationReport.JsonOptions) ?? throw new JsonException("null document"); }
        catch (JsonException e) { throw Bad(source, $"not valid partial JSON ({e.Message})", e); }
        ShardCoverage.CheckKindAndVersion(source, dto.Kind, Kind, dto.SchemaVersion, SchemaVersion);
        var shardDto = dto.Shard ?? throw Bad(source, "shard is missing");
        var evaluation = dto.Evaluation ?? throw Bad(source, "evaluation is missing");
        var examples = dto.ExampleRecordIndices ?? throw Bad(source, "example_record_indices is missing");
        if (string.IsNullOrEmpty(dto.DatasetFingerprint)) throw Bad(source, "dataset_fingerprint is missing");
        if (evaluation.Attacks is null || examples.Length != evaluation.Attacks.Count)
            throw Bad(source, "example_record_indices needs one list per attack");
        for (int a = 0; a < examples.Length; a++)
            if (examples[a] is null || examples[a].Length != evaluation.Attacks[a].Examples.Count)
                throw Bad(source, $"example_record_indices[{a}] needs one index per example of attack '{evaluation.Attacks[a].Label}'");
        foreach (var attack in evaluation.Attacks)
        {
            if (attack.Agreements is not { } agreements) continue;
            var judges = attack.Judges ?? [];
            if (agreements.Count != Math.Max(0, judges.Count - 1))
                throw Bad(source, $"attack '{attack.Label}' has {agreements.Count} judge agreements for {judges.Count} judges (one per judge after the first)");
            for (int k = 0; k < agreements.Count; k++)
            {
                if (agreements[k] is null || agreements[k].Judge != judges[k + 1].Judge || agreements[k].Reference != judges[0].Judge)
                    throw Bad(source, $"agreement {k} of attack '{attack.Label}' must compare judge '{judges[k + 1].Judge}' with '{judges[0].Judge}'");
                try { agreements[k].Validate(); }
                catch (ArgumentException e) { throw Bad(source, e.Message, e); }
            }
        }
        ShardSpec shard;
        try { shard = new ShardSpec(shardDto.Index, shardDto.Count).Validate(); }
        catch (ArgumentException e) { throw Bad(source, e.Message, e); }
        return new AttackPartialReport
        {
            Shard = shard, DatasetFingerprint = dto.DatasetFingerprint, DatasetRecords = dto.DatasetRecords, Seed = dto.Seed,
            ExamplesPerAttack = dto.ExamplesPerAttack, Evaluation = evaluation, ExampleRecordIndices = examples,
        };
    }

    /// <summary>Reads a partial file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">It does not exist.</exception>
    /// <exception cref="ShardMergeException">It is not a valid partial.</exception>
    public static AttackPartialReport ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return FromJson(ShardCoverage.ReadPartialText(path), path);
    }

    /// <summary>
    /// Merges the partials of shards 0..N-1 into the results of one run over the whole dataset: per attack and judge the
    /// successes, refusals, others, unparseable verdicts and n add up (and the judge-agreement counts) (per sweep setting the successes and n), and each rate and Wilson interval is
    /// computed from the totals (<see cref="RateEstimate.Wilson"/>), never averaged across shards.
    /// </summary>
    /// <param name="parts">One partial per shard, any order.</param>
    /// <param name="names">Names of the parts for messages (e.g. file paths); default "part 0", ...</param>
    /// <returns>The results report (one seed, one defense); metadata names the shard count and the dataset fingerprint.</returns>
    /// <exception cref="ShardMergeException">Shards overlap or are missing, or the parts disagree on the dataset, seed,
    /// defense, attacks, judges or sweep settings.</exception>
    public static EvaluationReport Merge(IReadOnlyList<AttackPartialReport> parts, IReadOnlyList<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        string Name(int i) => names is not null && i < names.Count ? names[i] : $"part {i}";
        ShardCoverage.Check(parts.Select((p, i) => (Name(i), p.Shard, p.DatasetFingerprint, p.DatasetRecords)).ToList());
        var first = parts[0];
        for (int i = 1; i < parts.Count; i++)
        {
            var p = parts[i];
            if (p.Seed != first.Seed) Mismatch(Name(i), Name(0), "seed");
            if (p.ExamplesPerAttack != first.ExamplesPerAttack) Mismatch(Name(i), Name(0), "examples_per_attack");
            if (p.Evaluation.Defense != first.Evaluation.Defense) Mismatch(Name(i), Name(0), "defense");
            if (p.Evaluation.Attacks.Count != first.Evaluation.Attacks.Count) Mismatch(Name(i), Name(0), "attacks");
            for (int a = 0; a < first.Evaluation.Attacks.Count; a++)
            {
                var x = p.Evaluation.Attacks[a];
                var y = first.Evaluation.Attacks[a];
                if (x.Attack != y.Attack || x.Label != y.Label || !SameParameters(x.Parameters, y.Parameters))
                    Mismatch(Name(i), Name(0), $"attack {a} ('{x.Label}' vs '{y.Label}')");
                if (!x.Judges.Select(j => j.Judge).SequenceEqual(y.Judges.Select(j => j.Judge)))
                    Mismatch(Name(i), Name(0), $"judges of attack '{x.Label}'");
                if (!(x.Settings ?? []).Select(s => s.Name).SequenceEqual((y.Settings ?? []).Select(s => s.Name)) || (x.Settings is null) != (y.Settings is null))
                    Mismatch(Name(i), Name(0), $"sweep settings of attack '{x.Label}'");
                if ((x.Items is null) != (y.Items is null))
                    Mismatch(Name(i), Name(0), $"item results of attack '{x.Label}' (kept in one part, not in the other)");
            }
        }
        var ordered = parts.OrderBy(p => p.Shard.Index).ToList();
        var attacks = new List<AttackResult>();
        for (int a = 0; a < first.Evaluation.Attacks.Count; a++)
        {
            var template = first.Evaluation.Attacks[a];
            var judges = template.Judges.Select((j, k) =>
            {
                int successes = ordered.Sum(p => p.Evaluation.Attacks[a].Judges[k].Successes);
                int n = ordered.Sum(p => p.Evaluation.Attacks[a].Judges[k].N);
                int refused = ordered.Sum(p => p.Evaluation.Attacks[a].Judges[k].Refused);
                int other = ordered.Sum(p => p.Evaluation.Attacks[a].Judges[k].Other);
                int unparseable = ordered.Sum(p => p.Evaluation.Attacks[a].Judges[k].Unparseable);
                var w = RateEstimate.Wilson(successes, n);
                return new JudgedRate(j.Judge, successes, n, w.Rate, w.Low, w.High, refused, other) { Unparseable = unparseable };
            }).ToList();
            // Agreement counts add up over shards; a shard written without them (an older file) leaves the merge without them.
            IReadOnlyList<JudgeAgreement>? agreements = ordered.All(p => p.Evaluation.Attacks[a].Agreements is not null)
                ? template.Agreements!.Select((g, k) => JudgeAgreement.Sum(ordered.Select(p => p.Evaluation.Attacks[a].Agreements![k]))).ToList()
                : null;
            var settings = template.Settings?.Select((s, k) => new SweepSetting(s.Name,
                ordered.Sum(p => p.Evaluation.Attacks[a].Settings![k].Successes), ordered.Sum(p => p.Evaluation.Attacks[a].Settings![k].N))).ToList();
            // The single run keeps the first examples in (sweep setting, dataset index) order; each shard kept its own first
            // ones in that order, which include every one of the merged first ones.
            var settingOrder = (template.Settings ?? []).Select((s, k) => (s.Name, k)).ToDictionary(t => t.Name, t => t.k, StringComparer.Ordinal);
            var examples = ordered.SelectMany(p => p.Evaluation.Attacks[a].Examples.Select((e, k) => (Example: e, Index: p.ExampleRecordIndices[a][k])))
                .OrderBy(t => SettingOf(t.Example) is { } s && settingOrder.TryGetValue(s, out int o) ? o : -1).ThenBy(t => t.Index)
                .Take(first.ExamplesPerAttack).Select(t => t.Example).ToList();
            // Items carry their dataset index: the shards' items in index order are the single run's.
            var items = template.Items is null ? null : ordered.SelectMany(p => p.Evaluation.Attacks[a].Items!).OrderBy(t => t.Index).ToList();
            attacks.Add(new AttackResult(template.Attack, template.Label, MergeParameters(ordered.Select(p => p.Evaluation.Attacks[a].Parameters).ToList()), judges, settings, examples,
                ordered.Sum(p => p.Evaluation.Attacks[a].Seconds)) { Agreements = agreements, Items = items });
        }
        var metadata = new Dictionary<string, string>
        {
            ["shards"] = first.Shard.Count.ToString(CultureInfo.InvariantCulture),
            ["dataset_fingerprint"] = first.DatasetFingerprint,
        };
        return EvaluationReport.Create([new SeedRun(first.Seed, [new DefenseEvaluation(first.Evaluation.Defense, attacks, null)])], metadata);
    }

    /// <summary>Reads the partial files and merges them (<see cref="Merge"/>).</summary>
    /// <param name="paths">One partial file per shard.</param>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="ShardMergeException">A file is invalid, or the parts do not merge.</exception>
    public static EvaluationReport MergeFiles(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return Merge(paths.Select(ReadFile).ToArray(), paths);
    }

    /// <summary>The sweep setting an example came from (its text starts with <c>[name] </c>), or null.</summary>
    private static string? SettingOf(ExampleResponse e) =>
        e.Response.StartsWith('[') && e.Response.IndexOf("] ", StringComparison.Ordinal) is int end and > 0 ? e.Response[1..end] : null;

    /// <summary>Attack parameters that are counts over the prompts (they add up across shards).</summary>
    private static readonly HashSet<string> CountParameters = new(StringComparer.Ordinal) { "forced_from_reference", "forced_from_base" };

    /// <summary>Parameters derived from counts, recomputed from the merged counts.</summary>
    private static readonly HashSet<string> DerivedParameters = new(StringComparer.Ordinal) { "forced_from_reference_share" };

    private static bool SameParameters(IReadOnlyDictionary<string, double> a, IReadOnlyDictionary<string, double> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out double v)
            && (v.Equals(kv.Value) || CountParameters.Contains(kv.Key) || DerivedParameters.Contains(kv.Key)));

    /// <summary>Settings are equal across shards (checked); counts add; the forced-token share is recomputed from the counts
    /// exactly as <see cref="Attacks.RankAssistedPrefillingAttack"/> computes it.</summary>
    private static Dictionary<string, double> MergeParameters(IReadOnlyList<IReadOnlyDictionary<string, double>> parts)
    {
        var merged = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (key, value) in parts[0])
            merged[key] = CountParameters.Contains(key) ? parts.Sum(p => p[key]) : value;
        if (merged.ContainsKey("forced_from_reference_share"))
        {
            if (merged.TryGetValue("forced_from_reference", out double fromReference) && merged.TryGetValue("forced_from_base", out double fromBase))
                merged["forced_from_reference_share"] = fromReference / Math.Max(1, fromReference + fromBase);
            else
                throw new ShardMergeException(ShardMergeError.Mismatched, "forced_from_reference_share cannot be merged without the forced_from_reference and forced_from_base counts (partials from an older build).");
        }
        return merged;
    }

    private static void Mismatch(string part, string reference, string field) =>
        throw new ShardMergeException(ShardMergeError.Mismatched, $"{part}: {field} differ from {reference}'s; every shard must run with the same settings.");

    private static ShardMergeException Bad(string source, string what, Exception? inner = null) => ShardCoverage.FormatError(source, what, inner);

    private sealed class Dto
    {
        public int SchemaVersion { get; set; }
        public string? Kind { get; set; }
        public ShardDto? Shard { get; set; }
        public string? DatasetFingerprint { get; set; }
        public int DatasetRecords { get; set; }
        public long Seed { get; set; }
        public int ExamplesPerAttack { get; set; }
        public DefenseEvaluation? Evaluation { get; set; }
        public int[][]? ExampleRecordIndices { get; set; }
    }

    private sealed class ShardDto
    {
        public int Index { get; set; }
        public int Count { get; set; }
    }
}
