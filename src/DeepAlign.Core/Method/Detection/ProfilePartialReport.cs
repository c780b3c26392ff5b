using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeepAlign.Data;
using DeepAlign.Runtime;

namespace DeepAlign.Method.Detection;

/// <summary>
/// What one shard of a sharded profiling run writes (<c>deepalign profile --shard I/N</c>, docs/scale-out.md): the
/// shard, the dataset's fingerprint and size, the options, and the aggregator's sufficient statistics (counts, sums and
/// sums of squares per position and bucket). <see cref="Merge"/> adds the statistics of shards 0..N-1 and derives means,
/// standard errors and the completion check from the totals, so the merged report equals one run over the whole dataset
/// (counts exactly; means to floating-point summation order).
/// </summary>
public sealed record ProfilePartialReport
{
    /// <summary>Version of the partial JSON format; <see cref="FromJson"/> refuses any other.</summary>
    public const int SchemaVersion = 1;

    /// <summary>The <c>kind</c> field of the partial JSON.</summary>
    public const string Kind = "deepalign.profile_partial";

    /// <summary>File name of the partial in a shard's output folder.</summary>
    public const string DefaultFileName = "profile.partial.json";

    /// <summary>The shard this part covers.</summary>
    public required ShardSpec Shard { get; init; }

    /// <summary>The input's <see cref="DatasetFingerprint.OfFile"/>.</summary>
    public required string DatasetFingerprint { get; init; }

    /// <summary>Records in the whole dataset (every shard reads and counts all of them).</summary>
    public required int DatasetRecords { get; init; }

    /// <summary>The profile options (must agree across shards).</summary>
    public required ProfileOptions Options { get; init; }

    /// <summary>This shard's sufficient statistics.</summary>
    public required ProfileStatistics Statistics { get; init; }

    /// <summary><c>teacher_forcing</c> or <c>generated</c> (must agree across shards).</summary>
    public string Mode { get; init; } = "teacher_forcing";

    /// <summary>Forced prefix length in <c>generated</c> mode (must agree across shards).</summary>
    public int? ForcedPrefixTokens { get; init; }

    /// <summary>The base model, for the record (paths may differ across machines; the first part's is kept).</summary>
    public string? BaseModel { get; init; }

    /// <summary>The aligned model, for the record.</summary>
    public string? AlignedModel { get; init; }

    /// <summary>The input file, for the record.</summary>
    public string? Input { get; init; }

    /// <summary>When the part was written.</summary>
    public DateTimeOffset CreatedUtc { get; init; } = DateTimeOffset.UtcNow;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.Strict,
        MaxDepth = SafeFiles.MaxJsonDepth,
    };

    /// <summary>The partial as JSON (doubles written round-trip exact).</summary>
    public string ToJson()
    {
        var o = Options;
        var s = Statistics;
        var dto = new Dto
        {
            SchemaVersion = SchemaVersion, Kind = Kind, Shard = new ShardDto { Index = Shard.Index, Count = Shard.Count },
            DatasetFingerprint = DatasetFingerprint, DatasetRecords = DatasetRecords, Mode = Mode, ForcedPrefixTokens = ForcedPrefixTokens,
            CreatedUtc = CreatedUtc.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            Sources = new SourcesDto { Base = BaseModel, Aligned = AlignedModel, Input = Input },
            Options = new OptionsDto
            {
                Tau = o.Tau, TopKBase = o.TopKBase, ReportTopItems = o.ReportTopItems, BucketStarts = o.BucketStarts.ToArray(),
                BatchSize = o.BatchSize, MaxResponseTokens = o.MaxResponseTokens, CompletionMargin = o.CompletionMargin,
            },
            Statistics = new StatisticsDto
            {
                Sequences = s.Sequences, Tokens = s.Tokens, BucketTokens = s.BucketTokens.ToArray(),
                ByPosition = s.ByPosition.Select(SumsDto.From).ToArray(), ByBucket = s.ByBucket.Select(SumsDto.From).ToArray(),
            },
        };
        return JsonSerializer.Serialize(dto, Json).Replace("\r\n", "\n") + "\n";
    }

    /// <summary>Reads a partial from JSON text.</summary>
    /// <param name="json">The text.</param>
    /// <param name="source">Names the source in messages (a file path).</param>
    /// <exception cref="ShardMergeException">Not a profile partial of schema version <see cref="SchemaVersion"/>, or a field is missing or invalid
    /// (<see cref="ShardMergeError.Format"/>).</exception>
    public static ProfilePartialReport FromJson(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        Dto dto;
        try { dto = JsonSerializer.Deserialize<Dto>(json, Json) ?? throw new JsonException("null document"); }
        catch (JsonException e) { throw Bad(source, $"not valid partial JSON ({e.Message})", e); }
        ShardCoverage.CheckKindAndVersion(source, dto.Kind, Kind, dto.SchemaVersion, SchemaVersion);
        var shardDto = dto.Shard ?? throw Bad(source, "shard is missing");
        var o = dto.Options ?? throw Bad(source, "options are missing");
        var s = dto.Statistics ?? throw Bad(source, "statistics are missing");
        if (string.IsNullOrEmpty(dto.DatasetFingerprint)) throw Bad(source, "dataset_fingerprint is missing");
        try
        {
            var shard = new ShardSpec(shardDto.Index, shardDto.Count).Validate();
            var options = new ProfileOptions
            {
                Tau = o.Tau, TopKBase = o.TopKBase, ReportTopItems = o.ReportTopItems, BucketStarts = o.BucketStarts ?? throw Bad(source, "options.bucket_starts is missing"),
                BatchSize = o.BatchSize, MaxResponseTokens = o.MaxResponseTokens, CompletionMargin = o.CompletionMargin,
            }.Validate();
            var stats = new ProfileStatistics(s.Sequences, s.Tokens,
                (s.ByPosition ?? throw Bad(source, "statistics.by_position is missing")).Select((p, i) => p.To(source, $"statistics.by_position[{i}]")).ToArray(),
                (s.ByBucket ?? throw Bad(source, "statistics.by_bucket is missing")).Select((p, i) => p.To(source, $"statistics.by_bucket[{i}]")).ToArray(),
                s.BucketTokens ?? throw Bad(source, "statistics.bucket_tokens is missing"));
            if (stats.ByBucket.Count != options.BucketStarts.Count || stats.BucketTokens.Count != options.BucketStarts.Count)
                throw Bad(source, $"statistics has {stats.ByBucket.Count} buckets for {options.BucketStarts.Count} bucket starts");
            if (dto.DatasetRecords < 0 || stats.Sequences < 0 || stats.Sequences > dto.DatasetRecords)
                throw Bad(source, $"statistics.sequences {stats.Sequences} is not within dataset_records {dto.DatasetRecords}");
            return new ProfilePartialReport
            {
                Shard = shard, DatasetFingerprint = dto.DatasetFingerprint, DatasetRecords = dto.DatasetRecords, Options = options, Statistics = stats,
                Mode = dto.Mode ?? "teacher_forcing", ForcedPrefixTokens = dto.ForcedPrefixTokens,
                BaseModel = dto.Sources?.Base, AlignedModel = dto.Sources?.Aligned, Input = dto.Sources?.Input,
                CreatedUtc = DateTimeOffset.TryParse(dto.CreatedUtc, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : DateTimeOffset.UnixEpoch,
            };
        }
        catch (ArgumentException e) { throw Bad(source, e.Message, e); }
    }

    /// <summary>Reads a partial file, or the <see cref="DefaultFileName"/> in a shard's output folder.</summary>
    /// <param name="path">A partial JSON file or a folder holding one.</param>
    /// <exception cref="FileNotFoundException">Neither exists.</exception>
    /// <exception cref="ShardMergeException">The file is not a valid partial.</exception>
    public static ProfilePartialReport ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string file = Directory.Exists(path) ? Path.Combine(path, DefaultFileName) : path;
        return FromJson(ShardCoverage.ReadPartialText(file), file);
    }

    /// <summary>
    /// Merges the partials of shards 0..N-1 into the report of the whole dataset: adds the sufficient statistics (in shard
    /// order) and derives means, standard errors and the completion check from the totals.
    /// </summary>
    /// <param name="parts">One partial per shard, any order.</param>
    /// <param name="names">Names of the parts for messages (e.g. file paths); default "part 0", "part 1", ...</param>
    /// <returns>The merged report (no gradient probe: run it once, unsharded; no sequences file: each shard keeps its own).</returns>
    /// <exception cref="ShardMergeException">Shards overlap or are missing, or the parts disagree on the dataset, the shard
    /// count, the options or the mode.</exception>
    public static ProfileReport Merge(IReadOnlyList<ProfilePartialReport> parts, IReadOnlyList<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(parts);
        string Name(int i) => names is not null && i < names.Count ? names[i] : $"part {i}";
        ShardCoverage.Check(parts.Select((p, i) => (Name(i), p.Shard, p.DatasetFingerprint, p.DatasetRecords)).ToList());
        var first = parts[0];
        for (int i = 1; i < parts.Count; i++)
        {
            var p = parts[i];
            string? field = !SameOptions(p.Options, first.Options) ? "options" : p.Mode != first.Mode ? "mode"
                : p.ForcedPrefixTokens != first.ForcedPrefixTokens ? "forced_prefix_tokens" : null;
            if (field is not null)
                throw new ShardMergeException(ShardMergeError.Mismatched, $"{Name(i)}: {field} differ from {Name(0)}'s; every shard must run with the same settings.");
        }
        var aggregator = new ProfileAggregator(first.Options);
        foreach (var p in parts.OrderBy(p => p.Shard.Index)) aggregator.Add(p.Statistics);
        return new ProfileReport
        {
            Options = first.Options,
            Aggregates = aggregator.Result(),
            Mode = first.Mode,
            ForcedPrefixTokens = first.ForcedPrefixTokens,
            BaseModel = first.BaseModel,
            AlignedModel = first.AlignedModel,
            Input = first.Input,
            SequencesFile = null,
        };
    }

    /// <summary>Reads the partial files (or shard folders) and merges them (<see cref="Merge"/>).</summary>
    /// <param name="paths">One partial file or shard output folder per shard.</param>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="ShardMergeException">A file is invalid, or the parts do not merge.</exception>
    public static ProfileReport MergeFiles(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return Merge(paths.Select(ReadFile).ToArray(), paths);
    }

    private static bool SameOptions(ProfileOptions a, ProfileOptions b) =>
        a.Tau.Equals(b.Tau) && a.TopKBase == b.TopKBase && a.ReportTopItems == b.ReportTopItems && a.BucketStarts.SequenceEqual(b.BucketStarts)
        && a.MaxResponseTokens == b.MaxResponseTokens && a.CompletionMargin.Equals(b.CompletionMargin);

    private static ShardMergeException Bad(string source, string what, Exception? inner = null) => ShardCoverage.FormatError(source, what, inner);

    private sealed class Dto
    {
        public int SchemaVersion { get; set; }
        public string? Kind { get; set; }
        public ShardDto? Shard { get; set; }
        public string? DatasetFingerprint { get; set; }
        public int DatasetRecords { get; set; }
        public string? Mode { get; set; }
        public int? ForcedPrefixTokens { get; set; }
        public string? CreatedUtc { get; set; }
        public SourcesDto? Sources { get; set; }
        public OptionsDto? Options { get; set; }
        public StatisticsDto? Statistics { get; set; }
    }

    private sealed class ShardDto
    {
        public int Index { get; set; }
        public int Count { get; set; }
    }

    private sealed class SourcesDto
    {
        public string? Base { get; set; }
        public string? Aligned { get; set; }
        public string? Input { get; set; }
    }

    private sealed class OptionsDto
    {
        public double Tau { get; set; }
        public int TopKBase { get; set; }
        public int ReportTopItems { get; set; }
        public int[]? BucketStarts { get; set; }
        public int BatchSize { get; set; }
        public int MaxResponseTokens { get; set; }
        public double CompletionMargin { get; set; }
    }

    private sealed class StatisticsDto
    {
        public int Sequences { get; set; }
        public long Tokens { get; set; }
        public long[]? BucketTokens { get; set; }
        public SumsDto[]? ByPosition { get; set; }
        public SumsDto[]? ByBucket { get; set; }
    }

    private sealed class SumsDto
    {
        public int N { get; set; }
        public double[]? Sums { get; set; }
        public double[]? SumsOfSquares { get; set; }

        public static SumsDto From(QuantitySums s) => new() { N = s.N, Sums = s.Sums.ToArray(), SumsOfSquares = s.SumsOfSquares.ToArray() };

        public QuantitySums To(string source, string where)
        {
            if (N < 0 || Sums is not { Length: 4 } || SumsOfSquares is not { Length: 4 })
                throw Bad(source, $"{where} needs n >= 0 and 4 sums and sums_of_squares");
            return new QuantitySums(N, Sums, SumsOfSquares);
        }
    }
}
