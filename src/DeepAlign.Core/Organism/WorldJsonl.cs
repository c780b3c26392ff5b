using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace DeepAlign.Organism;

/// <summary>
/// Reads and writes dataset files (JSONL, UTF-8, one <see cref="WorldItem"/> per line) in the DESIGN.md schema.
/// Blank lines are skipped; unknown fields are ignored; a malformed line throws <see cref="WorldFormatException"/>
/// naming the file and line. Output is deterministic: fixed field order, no indentation, <c>\n</c> line ends.
/// </summary>
public static class WorldJsonl
{
    internal static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Reads every item of a JSONL file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WorldFormatException">A line is not a valid dataset line.</exception>
    public static IReadOnlyList<WorldItem> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file not found: {path}", path);
        using var reader = new StreamReader(path, new UTF8Encoding(false));
        return Read(reader, path);
    }

    /// <summary>Reads every item from a text reader; <paramref name="sourceName"/> names it in errors.</summary>
    /// <exception cref="WorldFormatException">A line is not a valid dataset line.</exception>
    public static IReadOnlyList<WorldItem> Read(TextReader reader, string sourceName)
    {
        var items = new List<WorldItem>();
        int lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            items.Add(ParseLine(line, sourceName, lineNumber));
        }
        return items;
    }

    /// <summary>Parses one dataset line.</summary>
    /// <exception cref="WorldFormatException">The line is not a valid dataset line.</exception>
    public static WorldItem ParseLine(string line, string? sourceName = null, int? lineNumber = null)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new WorldFormatException(sourceName, lineNumber, $"invalid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new WorldFormatException(sourceName, lineNumber, $"expected a JSON object, found {root.ValueKind}");

            string? Str(string key)
            {
                if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                if (v.ValueKind != JsonValueKind.String)
                    throw new WorldFormatException(sourceName, lineNumber, $"field \"{key}\" must be a string, found {v.ValueKind}");
                return v.GetString();
            }

            string? prompt = Str("prompt");
            string? system = Str("system");
            List<WorldMessage>? history = null;
            if (root.TryGetProperty("messages", out var messages) && messages.ValueKind != JsonValueKind.Null)
            {
                if (prompt is not null)
                    throw new WorldFormatException(sourceName, lineNumber, "a line carries both \"prompt\" and \"messages\"; use one");
                (system, history, prompt) = ParseMessages(messages, system, sourceName, lineNumber);
            }
            if (prompt is null)
                throw new WorldFormatException(sourceName, lineNumber, "missing \"prompt\" (or \"messages\")");

            return new WorldItem
            {
                Id = Str("id"),
                Category = Str("category"),
                System = system,
                Prompt = prompt,
                Response = Str("response"),
                HarmfulResponse = Str("harmful_response"),
                SafeResponse = Str("safe_response"),
                History = history is { Count: > 0 } ? history : null,
            };
        }
    }

    private static (string? System, List<WorldMessage> History, string Prompt) ParseMessages(
        JsonElement messages, string? system, string? sourceName, int? lineNumber)
    {
        if (messages.ValueKind != JsonValueKind.Array)
            throw new WorldFormatException(sourceName, lineNumber, $"field \"messages\" must be an array, found {messages.ValueKind}");
        var list = new List<WorldMessage>();
        int index = 0;
        foreach (var m in messages.EnumerateArray())
        {
            string where = $"messages[{index}]";
            if (m.ValueKind != JsonValueKind.Object)
                throw new WorldFormatException(sourceName, lineNumber, $"{where} must be an object");
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw new WorldFormatException(sourceName, lineNumber, $"{where} needs a string \"role\"");
            if (!m.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw new WorldFormatException(sourceName, lineNumber, $"{where} needs a string \"content\"");
            string r = role.GetString()!;
            if (r is not ("system" or "user" or "assistant"))
                throw new WorldFormatException(sourceName, lineNumber, $"{where}.role must be system, user or assistant, found \"{r}\"");
            if (r == "system" && index != 0)
                throw new WorldFormatException(sourceName, lineNumber, $"{where}: a system message may only come first");
            list.Add(new WorldMessage(r, content.GetString()!));
            index++;
        }
        if (list.Count == 0)
            throw new WorldFormatException(sourceName, lineNumber, "field \"messages\" is empty");
        if (list[^1].Role != "user")
            throw new WorldFormatException(sourceName, lineNumber, $"the last message must be the user turn, found \"{list[^1].Role}\"");
        if (list[0].Role == "system")
        {
            if (system is not null)
                throw new WorldFormatException(sourceName, lineNumber, "a line carries both \"system\" and a system message");
            system = list[0].Content;
            list.RemoveAt(0);
        }
        string prompt = list[^1].Content;
        list.RemoveAt(list.Count - 1);
        return (system, list, prompt);
    }

    /// <summary>Formats one item as a JSON line (without the line end).</summary>
    public static string FormatLine(WorldItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            if (item.Id is not null) w.WriteString("id", item.Id);
            if (item.Category is not null) w.WriteString("category", item.Category);
            if (item.History is { Count: > 0 })
            {
                w.WriteStartArray("messages");
                foreach (var m in item.ToMessages())
                {
                    w.WriteStartObject();
                    w.WriteString("role", m.Role);
                    w.WriteString("content", m.Content);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            else
            {
                if (item.System is not null) w.WriteString("system", item.System);
                w.WriteString("prompt", item.Prompt);
            }
            if (item.Response is not null) w.WriteString("response", item.Response);
            if (item.HarmfulResponse is not null) w.WriteString("harmful_response", item.HarmfulResponse);
            if (item.SafeResponse is not null) w.WriteString("safe_response", item.SafeResponse);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes items as JSONL (UTF-8 without BOM, <c>\n</c> after every line), atomically.</summary>
    public static void Write(string path, IEnumerable<WorldItem> items)
    {
        var sb = new StringBuilder();
        foreach (var item in items) sb.Append(FormatLine(item)).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}

/// <summary>Writes a file through a temporary sibling and a rename, so readers never see half a file.</summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string text)
    {
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string tmp = full + ".tmp-" + Environment.ProcessId + "-" + Environment.CurrentManagedThreadId;
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }
}
