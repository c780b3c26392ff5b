using System.Globalization;
using System.Text;
using nietras.SeparatedValues;

namespace DeepAlign.Data;

/// <summary>
/// Reads CSV dataset files (RFC 4180: comma separated, a header row, fields quoted with <c>"</c> when they hold commas,
/// quotes or line breaks, inner quotes doubled; UTF-8 with or without a BOM; LF or CRLF line ends) into
/// <see cref="DatasetRecord"/>s, streaming, through the Sep parser. Layouts (<see cref="DatasetFormat"/>): AdvBench's
/// <c>harmful_behaviors.csv</c>, HarmBench's behaviors CSV, and CSV with the JSONL field names (docs/data-formats.md).
/// Blank lines are skipped; extra columns are ignored. A malformed file throws <see cref="DatasetFormatException"/> whose
/// message starts with <c>file:line:</c> and names the column.
/// </summary>
public static class CsvDatasetReader
{
    /// <summary>What HarmBench puts between a contextual behavior's context and the behavior in its test cases.</summary>
    public const string HarmBenchContextSeparator = "\n\n---\n\n";

    /// <summary>The columns of CSV files in the JSONL field layout (<see cref="DatasetFormat.Csv"/>); <c>prompt</c> is required.</summary>
    public static IReadOnlyList<string> FieldColumns { get; } =
        ["id", "category", "system", "prompt", "response", "harmful_response", "safe_response", "chosen", "rejected"];

    /// <summary>Longest row accepted, in characters (64 Mi, as <see cref="JsonlDatasetReader.MaxLineLength"/>); a longer row
    /// (e.g. after an unterminated quote) is a <see cref="DatasetFormatException"/>, never a huge buffer.</summary>
    public const int MaxRowLength = 64 * 1024 * 1024;

    private static readonly string[] AdvBenchColumns = ["goal", "target"];
    private static readonly string[] HarmBenchColumns = ["Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID"];

    /// <summary>Reads every record of a CSV file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="layout"><see cref="DatasetFormat.Csv"/> (the header decides), <see cref="DatasetFormat.AdvBench"/> or <see cref="DatasetFormat.HarmBench"/>.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">The file is malformed, lacks a column of its layout, or holds no records.</exception>
    /// <exception cref="ArgumentException"><paramref name="layout"/> is not a CSV layout.</exception>
    public static IReadOnlyList<DatasetRecord> ReadFile(string path, DatasetFormat layout = DatasetFormat.Csv) => StreamFile(path, layout).ToList();

    /// <summary>Streams the records of a CSV file (the file is never loaded whole).</summary>
    /// <param name="path">The file.</param>
    /// <param name="layout"><see cref="DatasetFormat.Csv"/> (the header decides), <see cref="DatasetFormat.AdvBench"/> or <see cref="DatasetFormat.HarmBench"/>.</param>
    /// <param name="cancellationToken">Checked before every row.</param>
    /// <returns>The records in file order; enumerating throws <see cref="DatasetFormatException"/> at a malformed row or
    /// at the end of a file that held no records.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    public static IEnumerable<DatasetRecord> StreamFile(string path, DatasetFormat layout = DatasetFormat.Csv, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckLayout(layout);
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        DeepAlign.Runtime.SafeFiles.CheckRegularFile(path, long.MaxValue, (m, e) => new DatasetFormatException(m, e));
        return Iterate();

        IEnumerable<DatasetRecord> Iterate()
        {
            using var reader = OpenText(path);
            foreach (var record in Stream(reader, path, layout, cancellationToken)) yield return record;
        }
    }

    /// <summary>Reads every record of CSV text; <paramref name="name"/> names the source in messages and locations.</summary>
    /// <param name="reader">CSV text.</param>
    /// <param name="name">Source name (file path).</param>
    /// <param name="layout"><see cref="DatasetFormat.Csv"/> (the header decides), <see cref="DatasetFormat.AdvBench"/> or <see cref="DatasetFormat.HarmBench"/>.</param>
    public static IReadOnlyList<DatasetRecord> Read(TextReader reader, string name, DatasetFormat layout = DatasetFormat.Csv) =>
        Stream(reader, name, layout).ToList();

    /// <summary>Streams the records of CSV text; <paramref name="name"/> names the source in messages and locations.</summary>
    /// <param name="reader">CSV text.</param>
    /// <param name="name">Source name (file path).</param>
    /// <param name="layout"><see cref="DatasetFormat.Csv"/> (the header decides), <see cref="DatasetFormat.AdvBench"/> or <see cref="DatasetFormat.HarmBench"/>.</param>
    /// <param name="cancellationToken">Checked before every row.</param>
    /// <returns>The records, in order; enumerating throws <see cref="DatasetFormatException"/> at a malformed row or at
    /// the end of text that held no records.</returns>
    public static IEnumerable<DatasetRecord> Stream(TextReader reader, string name, DatasetFormat layout = DatasetFormat.Csv, CancellationToken cancellationToken = default) =>
        Stream(reader, name, layout, cancellationToken, MaxRowLength);

    /// <summary><see cref="Stream(TextReader, string, DatasetFormat, CancellationToken)"/> with a row length limit (tests use a small one).</summary>
    internal static IEnumerable<DatasetRecord> Stream(TextReader reader, string name, DatasetFormat layout, CancellationToken cancellationToken, int maxRowLength)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(name);
        CheckLayout(layout);
        return Iterate();

        IEnumerable<DatasetRecord> Iterate()
        {
            using var csv = Open(new BoundedRowReader(reader, name, maxRowLength), name);
            var header = Header(csv, name);
            var map = Columns.For(layout, header, name);
            int index = 0, line = 1;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                DatasetRecord? record;
                try
                {
                    if (!csv.MoveNext()) break;
                    line = csv.Current.LineNumberFrom;
                    record = Convert(csv, name, map, header, index);
                }
                catch (DecoderFallbackException e)
                {
                    throw new DatasetFormatException($"{name}:{line}: the file is not valid UTF-8 (at or after this line).", e);
                }
                if (record is null) continue;
                index++;
                yield return record;
            }
            if (index == 0) throw new DatasetFormatException($"{name}: the dataset is empty (a header and no rows).");
        }
    }

    /// <summary>The layout a CSV header implies: AdvBench (<c>goal</c> and <c>target</c>), HarmBench (<c>Behavior</c> and
    /// <c>BehaviorID</c>), or else <see cref="DatasetFormat.Csv"/> (the JSONL field names).</summary>
    /// <param name="header">The column names.</param>
    public static DatasetFormat LayoutOf(IReadOnlyList<string> header)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (header.Contains("goal") && header.Contains("target")) return DatasetFormat.AdvBench;
        if (header.Contains("Behavior") && header.Contains("BehaviorID")) return DatasetFormat.HarmBench;
        return DatasetFormat.Csv;
    }

    /// <summary>The layout of a CSV file, from its header (<see cref="LayoutOf(IReadOnlyList{string})"/>).</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="DatasetFormatException">The file is empty or its header is malformed.</exception>
    public static DatasetFormat DetectLayout(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        DeepAlign.Runtime.SafeFiles.CheckRegularFile(path, long.MaxValue, (m, e) => new DatasetFormatException(m, e));
        using var reader = OpenText(path);
        using var csv = Open(reader, path);
        return LayoutOf(Header(csv, path));
    }

    private static StreamReader OpenText(string path) =>
        new(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: true);

    private static void CheckLayout(DatasetFormat layout)
    {
        if (layout is not (DatasetFormat.Csv or DatasetFormat.AdvBench or DatasetFormat.HarmBench))
            throw new ArgumentException($"{layout} is not a CSV layout; use Csv, AdvBench or HarmBench.", nameof(layout));
    }

    /// <summary>Sep with a fixed comma (no separator guessing), quotes kept so they can be checked, and the column count
    /// checked here so the message can name the column.</summary>
    private static SepReader Open(TextReader reader, string name)
    {
        try
        {
            return new SepReaderOptions(new Sep(','))
            {
                HasHeader = true, Unescape = false, DisableColCountCheck = true, CultureInfo = CultureInfo.InvariantCulture,
            }.From(reader);
        }
        catch (DecoderFallbackException e) { throw new DatasetFormatException($"{name}:1: the file is not valid UTF-8.", e); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException)
        {
            throw new DatasetFormatException($"{name}:1: the header row is malformed ({e.Message.ReplaceLineEndings(" ")}).", e);
        }
    }

    private static string[] Header(SepReader csv, string name)
    {
        if (csv.Header.IsEmpty) throw new DatasetFormatException($"{name}: the file is empty (no header row).");
        var names = csv.Header.ColNames.ToArray();
        if (names.Length > 0 && names[0].StartsWith('\uFEFF')) names[0] = names[0][1..];
        for (int c = 0; c < names.Length; c++)
        {
            // The header's own fields may be quoted too.
            names[c] = Unquote(names[c], name, 1, $"header column {c + 1}");
        }
        return names;
    }

    /// <summary>Converts the current row, or returns null for a blank line.</summary>
    private static DatasetRecord? Convert(SepReader csv, string name, Columns map, string[] header, int index)
    {
        var row = csv.Current;
        int line = row.LineNumberFrom, count = row.ColCount;
        if (count == 1 && row.Span.Trim().IsEmpty) return null;
        if (count > header.Length)
            throw new DatasetFormatException($"{name}:{line}: the row has {count} fields but the header has {header.Length} " +
                "(a field with a comma, quote or line break must be quoted).");
        if (count < header.Length)
            throw new DatasetFormatException($"{name}:{line}: column '{header[count]}' ({count + 1} of {header.Length}) is missing: the row has {count} field(s).");
        var cells = new string[count];
        for (int c = 0; c < count; c++) cells[c] = Unquote(row[c].ToString(), name, line, $"column '{header[c]}'");
        string? Cell(int column, bool required)
        {
            if (column < 0) return null;
            if (cells[column].Length == 0)
            {
                if (required) throw new DatasetFormatException($"{name}:{line}: column '{header[column]}' is empty.");
                return null;
            }
            return cells[column];
        }
        string location = $"{name}:{line}";
        switch (map.Layout)
        {
            case DatasetFormat.AdvBench:
                return new DatasetRecord
                {
                    Location = location, Id = index.ToString(CultureInfo.InvariantCulture),
                    Prompt = Cell(map.Goal, required: true), HarmfulResponse = Cell(map.Target, required: true),
                };
            case DatasetFormat.HarmBench:
                string behavior = Cell(map.Behavior, required: true)!;
                string? context = Cell(map.Context, required: false);
                return new DatasetRecord
                {
                    Location = location, Id = Cell(map.BehaviorId, required: true), Category = Cell(map.SemanticCategory, required: false),
                    Prompt = context is null ? behavior : context + HarmBenchContextSeparator + behavior,
                };
            default:
                return new DatasetRecord
                {
                    Location = location, Id = Cell(map.Fields[0], false), Category = Cell(map.Fields[1], false), System = Cell(map.Fields[2], false),
                    Prompt = Cell(map.Fields[3], true), Response = Cell(map.Fields[4], false), HarmfulResponse = Cell(map.Fields[5], false),
                    SafeResponse = Cell(map.Fields[6], false), Chosen = Cell(map.Fields[7], false), Rejected = Cell(map.Fields[8], false),
                };
        }
    }

    /// <summary>
    /// A raw field as RFC 4180 defines it: unquoted text without quotes, or a quoted field whose inner quotes are doubled;
    /// returns its value. Sep splits the rows and fields; this checks the quoting it does not (an unterminated quote
    /// otherwise runs silently to the end of the file).
    /// </summary>
    private static string Unquote(string raw, string name, int line, string what)
    {
        if (raw.Length == 0 || raw[0] != '"')
        {
            if (raw.Contains('"'))
                throw new DatasetFormatException($"{name}:{line}: {what} has a quote inside an unquoted field; quote the whole field and double the quotes in it.");
            return raw;
        }
        if (raw.Length < 2 || raw[^1] != '"')
            throw new DatasetFormatException($"{name}:{line}: {what} opens a quote that is not closed at the end of the field (an unterminated quote, or text after the closing quote).");
        var inner = raw.AsSpan(1, raw.Length - 2);
        var sb = new StringBuilder(inner.Length);
        for (int i = 0; i < inner.Length; i++)
        {
            if (inner[i] == '"')
            {
                if (i + 1 >= inner.Length || inner[i + 1] != '"')
                    throw new DatasetFormatException($"{name}:{line}: {what} has a lone quote inside a quoted field (quotes in a field are doubled: \"\").");
                i++;
            }
            sb.Append(inner[i]);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Passes the text through to Sep while following RFC 4180 row boundaries (a line end outside quotes; a quote toggles
    /// quoting, as Sep reads it), and throws once a row grows past the limit: Sep would otherwise buffer the rest of the
    /// file after an unterminated quote.
    /// </summary>
    private sealed class BoundedRowReader(TextReader inner, string name, int maxRowLength) : TextReader
    {
        private bool _quoted;
        private long _rowLength;
        private int _line = 1, _rowLine = 1;

        public override int Peek() => inner.Peek();

        public override int Read()
        {
            int c = inner.Read();
            if (c >= 0) Track(new ReadOnlySpan<char>([(char)c]));
            return c;
        }

        public override int Read(char[] buffer, int index, int count) => Read(buffer.AsSpan(index, count));

        public override int Read(Span<char> buffer)
        {
            int n = inner.Read(buffer);
            Track(buffer[..n]);
            return n;
        }

        private void Track(ReadOnlySpan<char> text)
        {
            foreach (char c in text)
            {
                if (c == '"') _quoted = !_quoted;
                else if (c == '\n')
                {
                    _line++;
                    if (!_quoted) { _rowLength = 0; _rowLine = _line; continue; }
                }
                if (++_rowLength > maxRowLength)
                    throw new DatasetFormatException($"{name}:{_rowLine}: the row is longer than {maxRowLength} characters " +
                        "(an unterminated quote makes the rest of the file one field).");
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Where each field of a layout is in the header (-1: absent).</summary>
    private sealed record Columns(DatasetFormat Layout)
    {
        public int Goal { get; init; } = -1;
        public int Target { get; init; } = -1;
        public int Behavior { get; init; } = -1;
        public int BehaviorId { get; init; } = -1;
        public int Context { get; init; } = -1;
        public int SemanticCategory { get; init; } = -1;
        public int[] Fields { get; init; } = [];

        public static Columns For(DatasetFormat layout, string[] header, string name)
        {
            if (layout == DatasetFormat.Csv) layout = LayoutOf(header);
            int Index(string column, bool required, string[] expected)
            {
                int i = Array.IndexOf(header, column);
                if (i < 0 && required)
                    throw new DatasetFormatException($"{name}:1: column '{column}' is missing; the {LayoutName(layout)} layout has columns " +
                        $"{string.Join(", ", expected)} (this header: {string.Join(", ", header)}).");
                return i;
            }
            return layout switch
            {
                DatasetFormat.AdvBench => new Columns(layout)
                {
                    Goal = Index("goal", true, AdvBenchColumns), Target = Index("target", true, AdvBenchColumns),
                },
                DatasetFormat.HarmBench => new Columns(layout)
                {
                    Behavior = Index("Behavior", true, HarmBenchColumns), BehaviorId = Index("BehaviorID", true, HarmBenchColumns),
                    Context = Index("ContextString", false, HarmBenchColumns), SemanticCategory = Index("SemanticCategory", false, HarmBenchColumns),
                },
                _ => new Columns(layout)
                {
                    Fields = FieldColumns.Select(f => Index(f, f == "prompt", FieldColumns.ToArray())).ToArray(),
                },
            };
        }

        private static string LayoutName(DatasetFormat layout) => layout switch
        {
            DatasetFormat.AdvBench => "AdvBench (harmful_behaviors.csv)",
            DatasetFormat.HarmBench => "HarmBench behaviors",
            _ => "dataset-field CSV",
        };
    }
}
