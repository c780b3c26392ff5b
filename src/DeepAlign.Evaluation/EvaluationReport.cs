using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeepAlign.Evaluation.Judges;

namespace DeepAlign.Evaluation;

/// <summary>
/// The results of an evaluation job as one document: metadata, per-stage timings, every seed's runs, and the summary
/// across seeds. Serialised as JSON (snake_case keys; <see cref="ResultsSchema"/> describes and validates it) and
/// rendered as Markdown tables (rates with 95% Wilson intervals and n; mean ± std across seeds).
/// </summary>
/// <param name="Schema">Schema id, <see cref="ResultsSchema.Id"/>.</param>
/// <param name="Metadata">Free-form facts (model, cache key, recipe, ...).</param>
/// <param name="Stages">Per-stage wall times.</param>
/// <param name="Runs">Per-seed results.</param>
/// <param name="Summary">Mean and std across seeds of every rate and utility metric.</param>
public sealed record EvaluationReport(string Schema, IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<StageTiming> Stages,
    IReadOnlyList<SeedRun> Runs, IReadOnlyList<SummaryRow> Summary)
{
    /// <summary>What the run was measured on (dataset fingerprint, models, judges, attack settings); null when not
    /// recorded (and in results files of schema 1).</summary>
    public RunProvenance? Provenance { get; init; }

    /// <summary>JSON options of the results files (snake_case, indented).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.Strict,
    };

    /// <summary>Builds the report and its summary from the runs.</summary>
    public static EvaluationReport Create(IReadOnlyList<SeedRun> runs, IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyList<StageTiming>? stages = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var values = new Dictionary<(string Defense, string Metric, string Judge), (List<double> Values, int N)>();
        var order = new List<(string, string, string)>();
        void Add(string d, string m, string j, double v, int n)
        {
            var key = (d, m, j);
            if (!values.TryGetValue(key, out var entry)) { entry = (new List<double>(), n); values[key] = entry; order.Add(key); }
            entry.Values.Add(v);
        }
        foreach (var run in runs)
            foreach (var d in run.Defenses)
            {
                foreach (var a in d.Attacks)
                    foreach (var j in a.Judges) Add(d.Defense, a.Label, j.Judge, j.Rate, j.N);
                if (d.Utility is { } u)
                {
                    Add(d.Defense, "benign accuracy", "exact", u.BenignAccuracy.Rate, u.BenignAccuracy.N);
                    if (u.Perplexity is double p) Add(d.Defense, "perplexity", "-", p, u.BenignAccuracy.N);
                    if (u.Agreement is { } g) Add(d.Defense, "agreement", "exact", g.Rate, g.N);
                }
            }
        var summary = order.Select(k =>
        {
            var (list, n) = values[k];
            double mean = list.Average();
            double std = list.Count > 1 ? Math.Sqrt(list.Sum(v => (v - mean) * (v - mean)) / (list.Count - 1)) : 0;
            return new SummaryRow(k.Item1, k.Item2, k.Item3, mean, std, list.Count, n);
        }).ToList();
        return new EvaluationReport(ResultsSchema.Id, metadata ?? new Dictionary<string, string>(), stages ?? Array.Empty<StageTiming>(), runs, summary);
    }

    /// <summary>The JSON text.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions).Replace("\r\n", "\n") + "\n";

    /// <summary>Reads a results document of any schema version DeepAlign wrote (<see cref="ResultsSchema.Ids"/>); fields a
    /// version lacks (schema 1: items and provenance) read as null.</summary>
    /// <exception cref="FormatException">The JSON is empty or names a schema DeepAlign does not know.</exception>
    public static EvaluationReport FromJson(string json)
    {
        var report = JsonSerializer.Deserialize<EvaluationReport>(json, JsonOptions) ?? throw new FormatException("The results JSON is empty.");
        if (!ResultsSchema.Ids.Contains(report.Schema))
            throw new FormatException($"The results JSON has schema \"{report.Schema}\"; this version reads {string.Join(", ", ResultsSchema.Ids)}.");
        return report;
    }

    /// <summary>
    /// Markdown tables: attack success rates per defense under each judge (95% Wilson interval and n for one seed;
    /// mean ± std over seeds otherwise; the count of unparseable verdicts when there were any), each further judge's
    /// agreement with the primary judge (when recorded), utility, and timings.
    /// </summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        bool single = Runs.Count == 1;
        var first = Runs.Count > 0 ? Runs[0] : null;
        var defenses = Summary.Select(s => s.Defense).Distinct().ToList();
        var attackLabels = Runs.SelectMany(r => r.Defenses).SelectMany(d => d.Attacks).Select(a => a.Label).Distinct().ToList();
        var judges = Runs.SelectMany(r => r.Defenses).SelectMany(d => d.Attacks).SelectMany(a => a.Judges).Select(j => j.Judge).Distinct().ToList();
        string Pct(double v) => (v * 100).ToString("0.0", inv);
        string Cell(string defense, string metric, string judge)
        {
            if (single)
            {
                var d = first!.Defenses.FirstOrDefault(x => x.Defense == defense);
                var rate = metric switch
                {
                    "benign accuracy" => d?.Utility?.BenignAccuracy,
                    "agreement" => d?.Utility?.Agreement,
                    _ => d?.Attacks.FirstOrDefault(a => a.Label == metric)?.Judges.FirstOrDefault(j => j.Judge == judge),
                };
                return rate is null ? "–" : $"{Pct(rate.Rate)}% [{Pct(rate.Low)}, {Pct(rate.High)}] n={rate.N}{Unparseable(defense, metric, judge)}";
            }
            var s = Summary.FirstOrDefault(x => x.Defense == defense && x.Metric == metric && x.Judge == judge);
            return s is null ? "–" : $"{Pct(s.Mean)}% ± {Pct(s.Std)} ({s.Seeds} seeds, n={s.N}){Unparseable(defense, metric, judge)}";
        }
        // Verdicts the judge could not give are not successes; say how many there were (over all seeds) so the rate reads as a lower bound.
        string Unparseable(string defense, string metric, string judge)
        {
            int u = Runs.SelectMany(r => r.Defenses).Where(d => d.Defense == defense).SelectMany(d => d.Attacks).Where(a => a.Label == metric)
                .SelectMany(a => a.Judges).Where(j => j.Judge == judge).Sum(j => j.Unparseable);
            return u == 0 ? "" : string.Create(inv, $"; {u} unparseable");
        }
        foreach (var judge in judges)
        {
            sb.Append(inv, $"### Attack success rate, {judge} judge\n\n");
            sb.Append("| defense | ").Append(string.Join(" | ", attackLabels)).Append(" |\n");
            sb.Append("|---|").Append(string.Concat(attackLabels.Select(_ => "---|"))).Append('\n');
            foreach (var d in defenses)
            {
                if (!Runs.SelectMany(r => r.Defenses).Any(x => x.Defense == d && x.Attacks.Count > 0)) continue;
                sb.Append("| ").Append(d).Append(" | ").Append(string.Join(" | ", attackLabels.Select(a => Cell(d, a, judge)))).Append(" |\n");
            }
            sb.Append('\n');
        }
        AppendAgreement(sb, defenses);
        if (Runs.SelectMany(r => r.Defenses).Any(d => d.Utility is not null))
        {
            sb.Append("### Utility (held-out benign prompts)\n\n| defense | benign accuracy | perplexity | agreement with aligned |\n|---|---|---|---|\n");
            foreach (var d in defenses)
            {
                if (!Runs.SelectMany(r => r.Defenses).Any(x => x.Defense == d && x.Utility is not null)) continue;
                var ppl = Summary.FirstOrDefault(x => x.Defense == d && x.Metric == "perplexity");
                string pplText = ppl is null ? "∞" : single ? ppl.Mean.ToString("0.000", inv) : $"{ppl.Mean.ToString("0.000", inv)} ± {ppl.Std.ToString("0.000", inv)}";
                sb.Append(inv, $"| {d} | {Cell(d, "benign accuracy", "exact")} | {pplText} | {Cell(d, "agreement", "exact")} |\n");
            }
            sb.Append('\n');
        }
        var sweeps = first?.Defenses.Where(d => d.Attacks.Any(a => a.Settings is not null)).ToList() ?? [];
        if (sweeps.Count > 0)
        {
            var names = sweeps.SelectMany(d => d.Attacks.Where(a => a.Settings is not null).SelectMany(a => a.Settings!)).Select(s => s.Name).Distinct().ToList();
            sb.Append(inv, $"### Decoding sweep, per setting ({judges[0]} judge, seed {first!.Seed})\n\n| setting | ").Append(string.Join(" | ", sweeps.Select(d => d.Defense))).Append(" |\n|---|");
            sb.Append(string.Concat(sweeps.Select(_ => "---|"))).Append('\n');
            foreach (var n in names)
            {
                sb.Append("| ").Append(n).Append(" | ");
                sb.Append(string.Join(" | ", sweeps.Select(d =>
                {
                    var s = d.Attacks.First(a => a.Settings is not null).Settings!.FirstOrDefault(x => x.Name == n);
                    return s is null ? "–" : $"{s.Successes}/{s.N}";
                })));
                sb.Append(" |\n");
            }
            sb.Append('\n');
        }
        if (Stages.Count > 0)
        {
            sb.Append("### Timings\n\n| stage | seconds |\n|---|---|\n");
            foreach (var s in Stages) sb.Append(inv, $"| {s.Name} | {s.Seconds:0.0} |\n");
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The judge-agreement tables: verdict pairs pooled over every attack (and seed) per defense, and over all defenses.</summary>
    private void AppendAgreement(StringBuilder sb, IReadOnlyList<string> defenses)
    {
        var inv = CultureInfo.InvariantCulture;
        var all = Runs.SelectMany(r => r.Defenses).SelectMany(d => d.Attacks.SelectMany(a => a.Agreements ?? []).Select(g => (d.Defense, Agreement: g))).ToList();
        if (all.Count == 0) return;
        string Pct(double? v) => v is double x ? (x * 100).ToString("0.0", inv) + "%" : "–";
        string Kappa(double? v) => v is double x ? x.ToString("0.000", inv) : "–";
        foreach (var pair in all.GroupBy(t => (t.Agreement.Judge, t.Agreement.Reference)))
        {
            sb.Append(inv, $"### Agreement of the {pair.Key.Judge} judge with the {pair.Key.Reference} judge\n\n");
            sb.Append("Verdict pairs on the same judged texts, pooled over every attack").Append(Runs.Count > 1 ? " and seed" : "")
              .Append(" (the sweep counts each setting's text). Agreement: share of identical verdicts (harmful, refused, other, unparseable); ")
              .Append("κ: Cohen's kappa; the harmful columns compare only the harmful / not harmful decision behind the attack success rate.\n\n");
            sb.Append("| defense | n | agreement | κ | harmful agreement | harmful κ |\n|---|---|---|---|---|---|\n");
            void Row(string name, JudgeAgreement g) =>
                sb.Append(inv, $"| {name} | {g.N} | {Pct(g.Agreement)} | {Kappa(g.Kappa)} | {Pct(g.HarmfulAgreement)} | {Kappa(g.HarmfulKappa)} |\n");
            foreach (var d in defenses)
            {
                var parts = pair.Where(t => t.Defense == d).Select(t => t.Agreement).ToList();
                if (parts.Count > 0) Row(d, JudgeAgreement.Sum(parts));
            }
            Row("**all defenses**", JudgeAgreement.Sum(pair.Select(t => t.Agreement)));
            sb.Append('\n');
        }
    }
}
