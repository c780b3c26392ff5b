using DeepAlign.Runtime;

namespace DeepAlign.Data;

/// <summary>
/// What every partial-report format shares (profile and attack partials): reading the file, the header checks, and the
/// merge's coverage check (one dataset, one shard count, each shard exactly once).
/// </summary>
internal static class ShardCoverage
{
    /// <summary>A <see cref="ShardMergeError.Format"/> error naming the source.</summary>
    public static ShardMergeException FormatError(string source, string what, Exception? inner = null) =>
        new(ShardMergeError.Format, $"{source}: {what}.", inner);

    /// <summary>The text of a partial file (bounded like every JSON file the library reads).</summary>
    /// <exception cref="FileNotFoundException">It does not exist.</exception>
    public static string ReadPartialText(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"Partial report '{file}' does not exist.", file);
        return SafeFiles.ReadAllText(file, SafeFiles.MaxJsonBytes, (m, e) => new ShardMergeException(ShardMergeError.Format, m, e));
    }

    /// <summary>Throws a format error unless the partial's kind and schema version are the expected ones.</summary>
    public static void CheckKindAndVersion(string source, string? kind, string expectedKind, int version, int expectedVersion)
    {
        if (kind != expectedKind) throw FormatError(source, $"kind is '{kind}', expected '{expectedKind}'");
        if (version != expectedVersion) throw FormatError(source, $"schema_version {version} is not supported (this build reads {expectedVersion})");
    }

    /// <summary>Throws <see cref="ShardMergeException"/> unless the parts are shards 0..N-1 of one dataset, each once.</summary>
    /// <param name="parts">(file, shard, dataset fingerprint, records in the whole dataset) per part.</param>
    public static void Check(IReadOnlyList<(string File, ShardSpec Shard, string Fingerprint, int Records)> parts)
    {
        if (parts.Count == 0) throw new ShardMergeException(ShardMergeError.Missing, "No partial reports to merge.");
        var first = parts[0];
        foreach (var p in parts.Skip(1))
        {
            if (p.Fingerprint != first.Fingerprint)
                throw new ShardMergeException(ShardMergeError.Mismatched, $"{p.File}: dataset_fingerprint {p.Fingerprint} differs from {first.File}'s {first.Fingerprint} (different input files).");
            if (p.Shard.Count != first.Shard.Count)
                throw new ShardMergeException(ShardMergeError.Mismatched, $"{p.File}: shard {p.Shard} is one of {p.Shard.Count} shards, {first.File}'s ({first.Shard}) one of {first.Shard.Count}.");
            if (p.Records != first.Records)
                throw new ShardMergeException(ShardMergeError.Mismatched, $"{p.File}: dataset_records {p.Records} differs from {first.File}'s {first.Records}.");
        }
        var seen = new Dictionary<int, string>();
        foreach (var p in parts)
        {
            if (seen.TryGetValue(p.Shard.Index, out var other))
                throw new ShardMergeException(ShardMergeError.Overlapping, $"{p.File} and {other} both hold shard {p.Shard}.");
            seen[p.Shard.Index] = p.File;
        }
        var missing = Enumerable.Range(0, first.Shard.Count).Where(i => !seen.ContainsKey(i)).ToList();
        if (missing.Count > 0)
            throw new ShardMergeException(ShardMergeError.Missing, $"Shards {string.Join(", ", missing.Select(i => $"{i}/{first.Shard.Count}"))} are missing ({parts.Count} of {first.Shard.Count} given).");
    }
}
