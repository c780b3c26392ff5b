namespace DeepAlign.Data;

/// <summary>
/// Reads a dataset file of any supported layout (<see cref="DatasetFormat"/>: JSONL, AdvBench, HarmBench or field CSV)
/// into <see cref="DatasetRecord"/>s: the entry point of every command and trainer that takes a dataset file. A
/// <c>.jsonl</c> file reads exactly as <see cref="JsonlDatasetReader"/> reads it; CSV goes through
/// <see cref="CsvDatasetReader"/>.
/// </summary>
public static class DatasetReader
{
    /// <summary>The names <see cref="ParseFormat"/> accepts, as the command line spells them.</summary>
    public static IReadOnlyList<string> FormatNames { get; } = ["auto", "jsonl", "csv", "advbench", "harmbench"];

    /// <summary>Parses a format name (<see cref="FormatNames"/>, case-insensitive).</summary>
    /// <param name="name">The name.</param>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static DatasetFormat ParseFormat(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "auto" => DatasetFormat.Auto,
            "jsonl" => DatasetFormat.Jsonl,
            "csv" => DatasetFormat.Csv,
            "advbench" => DatasetFormat.AdvBench,
            "harmbench" => DatasetFormat.HarmBench,
            _ => throw new ArgumentException($"Unknown dataset format '{name}'; use {string.Join(", ", FormatNames)}.", nameof(name)),
        };
    }

    /// <summary>
    /// The format of a file (<see cref="DatasetFormat.Jsonl"/>, or for CSV the layout its header implies): by extension
    /// (<c>.jsonl</c>, <c>.json</c>, <c>.ndjson</c>; <c>.csv</c>), else by the first non-blank character (<c>{</c>: JSONL).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">A CSV file whose header cannot be read.</exception>
    public static DatasetFormat Detect(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        bool csv = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" or ".json" or ".ndjson" => false,
            ".csv" => true,
            _ => !StartsWithBrace(path),
        };
        return csv ? CsvDatasetReader.DetectLayout(path) : DatasetFormat.Jsonl;
    }

    /// <summary>Reads every record of a dataset file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="format">Its layout; <see cref="DatasetFormat.Auto"/> (default) detects it (<see cref="Detect"/>).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">The file is malformed (the message starts with <c>file:line:</c>) or holds no records.</exception>
    public static IReadOnlyList<DatasetRecord> ReadFile(string path, DatasetFormat format = DatasetFormat.Auto) =>
        StreamFile(path, format).ToList();

    /// <summary>Streams the records of a dataset file (the file is never loaded whole).</summary>
    /// <param name="path">The file.</param>
    /// <param name="format">Its layout; <see cref="DatasetFormat.Auto"/> (default) detects it (<see cref="Detect"/>).</param>
    /// <param name="cancellationToken">Checked before every line or row.</param>
    /// <returns>The records in file order; enumerating throws <see cref="DatasetFormatException"/> at a malformed line.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    public static IEnumerable<DatasetRecord> StreamFile(string path, DatasetFormat format = DatasetFormat.Auto, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (format == DatasetFormat.Auto) format = Detect(path);
        return format == DatasetFormat.Jsonl
            ? JsonlDatasetReader.StreamFile(path, cancellationToken)
            : CsvDatasetReader.StreamFile(path, format, cancellationToken);
    }

    private static bool StartsWithBrace(string path)
    {
        DeepAlign.Runtime.SafeFiles.CheckRegularFile(path, long.MaxValue, (m, e) => new DatasetFormatException(m, e));
        using var stream = File.OpenRead(path);
        Span<byte> buffer = stackalloc byte[4096];
        int n = stream.Read(buffer);
        var span = buffer[..n];
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) span = span[3..];
        foreach (var b in span)
        {
            if (b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') continue;
            return b == (byte)'{';
        }
        return true; // blank: let the JSONL reader report the empty dataset
    }
}
