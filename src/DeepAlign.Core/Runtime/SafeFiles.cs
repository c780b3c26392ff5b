using System.Text;
using System.Text.Json;

namespace DeepAlign.Runtime;

/// <summary>Builds the typed exception of a file format from a message (the path is already in it) and a cause.</summary>
internal delegate Exception FormatError(string message, Exception? inner);

/// <summary>
/// The one place where DeepAlign opens and parses files it did not write (docs/reliability.md): regular-file and size
/// checks before a file is opened (a FIFO, socket or device reports size 0 and is never opened, so it cannot block
/// the process), strict UTF-8, no lone surrogate escapes (<c>\ud800</c>), a maximum JSON depth, and errors of the
/// format's own exception type naming the file, line and JSON path.
/// </summary>
internal static class SafeFiles
{
    /// <summary>Deepest JSON nesting accepted (Hugging Face files nest fewer than 10 levels).</summary>
    public const int MaxJsonDepth = 64;

    /// <summary>Largest JSON file read whole (the largest real tokenizer.json files are tens of MB).</summary>
    public const long MaxJsonBytes = 512L * 1024 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Throws <see cref="FileNotFoundException"/> when <paramref name="path"/> is missing and the format error when it is
    /// not a readable regular file (directory, FIFO, socket, device: all report size 0) or is larger than
    /// <paramref name="maxBytes"/>. Returns the file's length.
    /// </summary>
    public static long CheckRegularFile(string path, long maxBytes, FormatError error, bool allowEmpty = false)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            if (Directory.Exists(path)) throw error($"{path}: is a folder, not a file.", null);
            throw new FileNotFoundException($"File not found: {path}", path);
        }
        if ((info.Attributes & FileAttributes.Directory) != 0) throw error($"{path}: is a folder, not a file.", null);
        var length = info.Length;
        if (length == 0 && !allowEmpty)
            throw error($"{path}: the file is empty or is not a regular file (a pipe, socket or device is never opened).", null);
        if (length > maxBytes)
            throw error($"{path}: the file has {length} bytes, more than the {maxBytes}-byte limit for this kind of file.", null);
        return length;
    }

    /// <summary>Reads a whole regular file of at most <paramref name="maxBytes"/> bytes (exactly the length the file reports).</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, FormatError error, bool allowEmpty = false)
    {
        var length = CheckRegularFile(path, maxBytes, error, allowEmpty);
        if (length == 0) return [];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var bytes = new byte[length];
        var done = 0;
        while (done < bytes.Length)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(done), done);
            if (n == 0) throw error($"{path}: the file shrank while it was read ({done} of {length} bytes).", null);
            done += n;
        }
        return bytes;
    }

    /// <summary>Reads and decodes a whole text file as strict UTF-8 (a BOM is skipped).</summary>
    public static string ReadAllText(string path, long maxBytes, FormatError error, bool allowEmpty = false)
    {
        var bytes = ReadAllBytes(path, maxBytes, error, allowEmpty);
        ValidateUtf8(bytes, path, error);
        var span = bytes.AsSpan();
        if (span.StartsWith(Utf8Bom)) span = span[3..];
        return StrictUtf8.GetString(span);
    }

    private static ReadOnlySpan<byte> Utf8Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>Reads and parses a JSON file strictly (see <see cref="ParseJson(ReadOnlyMemory{byte}, string, FormatError, bool)"/>).</summary>
    public static JsonDocument ReadJson(string path, FormatError error, bool allowCommentsAndTrailingCommas = false, long maxBytes = MaxJsonBytes) =>
        ParseJson(ReadAllBytes(path, maxBytes, error), path, error, allowCommentsAndTrailingCommas);

    /// <summary>
    /// Parses UTF-8 JSON: invalid UTF-8 and lone surrogate escapes are rejected first (System.Text.Json would accept them
    /// and throw InvalidOperationException when the string is read), then the document is parsed with
    /// <see cref="MaxJsonDepth"/>. Every failure is <paramref name="error"/> with the line and byte.
    /// </summary>
    public static JsonDocument ParseJson(ReadOnlyMemory<byte> utf8, string where, FormatError error, bool allowCommentsAndTrailingCommas = false)
    {
        var span = utf8.Span;
        if (span.StartsWith(Utf8Bom)) utf8 = utf8[3..];
        ValidateJsonText(utf8.Span, where, error);
        try
        {
            return JsonDocument.Parse(utf8, new JsonDocumentOptions
            {
                MaxDepth = MaxJsonDepth,
                AllowTrailingCommas = allowCommentsAndTrailingCommas,
                CommentHandling = allowCommentsAndTrailingCommas ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
            });
        }
        catch (JsonException e)
        {
            throw error($"{where}: invalid JSON at line {(e.LineNumber ?? 0) + 1}, byte {e.BytePositionInLine ?? 0}: {e.Message}", e);
        }
    }

    /// <summary>Parses one JSON string (e.g. a JSONL line) strictly; see <see cref="ParseJson(ReadOnlyMemory{byte}, string, FormatError, bool)"/>.</summary>
    public static JsonDocument ParseJson(string json, string where, FormatError error)
    {
        // A .NET string may hold lone surrogates (from a lenient decoder or a caller); refuse them like escapes.
        for (var i = 0; i < json.Length; i++)
        {
            var c = json[i];
            if (char.IsHighSurrogate(c) && i + 1 < json.Length && char.IsLowSurrogate(json[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) throw error($"{where}: the text holds a lone UTF-16 surrogate at character {i}.", null);
        }
        return ParseJson(Encoding.UTF8.GetBytes(json), where, error);
    }

    /// <summary>Throws <paramref name="error"/> naming the line and byte of the first invalid UTF-8 sequence.</summary>
    public static void ValidateUtf8(ReadOnlySpan<byte> bytes, string where, FormatError error)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return;
        var offset = FirstInvalidUtf8(bytes);
        var (line, column) = LineOf(bytes, offset);
        throw error($"{where}: invalid UTF-8 at line {line}, byte {column} (offset {offset}).", null);
    }

    /// <summary>Strict UTF-8 plus: every <c>\uD800-\uDBFF</c> escape inside a JSON string is followed by a <c>\uDC00-\uDFFF</c> escape and no low surrogate stands alone.</summary>
    public static void ValidateJsonText(ReadOnlySpan<byte> bytes, string where, FormatError error)
    {
        ValidateUtf8(bytes, where, error);
        var inString = false;
        for (var i = 0; i < bytes.Length; i++)
        {
            var b = bytes[i];
            if (!inString) { if (b == (byte)'"') inString = true; continue; }
            if (b == (byte)'"') { inString = false; continue; }
            if (b != (byte)'\\' || i + 1 >= bytes.Length) continue;
            i++;
            if (bytes[i] != (byte)'u') continue;
            var unit = Hex4(bytes, i + 1);
            if (unit is >= 0xD800 and <= 0xDBFF)
            {
                var next = i + 5 + 1 < bytes.Length && bytes[i + 5] == (byte)'\\' && bytes[i + 6] == (byte)'u' ? Hex4(bytes, i + 7) : -1;
                if (next is not (>= 0xDC00 and <= 0xDFFF)) throw Lone(bytes, i - 1, where, error);
                i += 10;
            }
            else if (unit is >= 0xDC00 and <= 0xDFFF) throw Lone(bytes, i - 1, where, error);
            else i += 4;
        }
    }

    private static Exception Lone(ReadOnlySpan<byte> bytes, int at, string where, FormatError error)
    {
        var (line, column) = LineOf(bytes, at);
        return error($"{where}: a lone UTF-16 surrogate escape at line {line}, byte {column} (a \\uD800-\\uDFFF escape that is not half of a pair).", null);
    }

    private static int Hex4(ReadOnlySpan<byte> bytes, int start)
    {
        if (start + 4 > bytes.Length) return -1;
        var v = 0;
        for (var k = 0; k < 4; k++)
        {
            var c = bytes[start + k];
            var d = c is >= (byte)'0' and <= (byte)'9' ? c - '0' : c is >= (byte)'a' and <= (byte)'f' ? c - 'a' + 10 : c is >= (byte)'A' and <= (byte)'F' ? c - 'A' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        return v;
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var decoder = StrictUtf8.GetDecoder();
        var chars = new char[4096];
        var offset = 0;
        while (offset < bytes.Length)
        {
            var n = Math.Min(1024, bytes.Length - offset);
            try
            {
                decoder.Convert(bytes.Slice(offset, n), chars, offset + n == bytes.Length, out var used, out _, out _);
                offset += used;
            }
            catch (DecoderFallbackException e)
            {
                return offset + Math.Max(0, e.Index);
            }
        }
        return bytes.Length;
    }

    private static (int Line, int Column) LineOf(ReadOnlySpan<byte> bytes, int offset)
    {
        offset = Math.Clamp(offset, 0, bytes.Length);
        var before = bytes[..offset];
        var line = before.Count((byte)'\n') + 1;
        var lastNewline = before.LastIndexOf((byte)'\n');
        return (line, offset - lastNewline - 1);
    }
}
