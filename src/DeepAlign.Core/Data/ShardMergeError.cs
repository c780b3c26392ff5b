namespace DeepAlign.Data;

/// <summary>Why partial reports could not be merged (<see cref="ShardMergeException.Error"/>).</summary>
public enum ShardMergeError
{
    /// <summary>A file is not a readable partial report of the expected kind and schema version.</summary>
    Format,
    /// <summary>Two partials cover the same shard.</summary>
    Overlapping,
    /// <summary>Some shard of 0..N-1 has no partial.</summary>
    Missing,
    /// <summary>The partials disagree on the dataset fingerprint, shard count, options or run settings.</summary>
    Mismatched,
}
