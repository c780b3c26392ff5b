using DeepAlign.Text;
using System.Text;
using System.Text.Json;

namespace DeepAlign.Training.Data;

/// <summary>
/// Reads JSONL dataset files (DESIGN.md schema): one JSON object per line, UTF-8; blank lines are skipped; unknown
/// fields are ignored. A malformed line throws <see cref="DatasetFormatException"/> naming the file and line number.
/// </summary>
public static class JsonlDatasetReader
{
    /// <summary>Reads every record of <paramref name="path"/>.</summary>
    /// <param name="path">A <c>.jsonl</c> file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">A line is malformed or the file holds no records.</exception>
    public static IReadOnlyList<DatasetRecord> ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        using var reader = new StreamReader(path, new UTF8Encoding(false, true));
        var records = Read(reader, path);
        if (records.Count == 0) throw new DatasetFormatException($"{path}: the dataset is empty.");
        return records;
    }

    /// <summary>Reads records from a text reader; <paramref name="name"/> is used in error messages.</summary>
    /// <param name="reader">JSONL text.</param>
    /// <param name="name">File name for messages.</param>
    public static IReadOnlyList<DatasetRecord> Read(TextReader reader, string name)
    {
        var records = new List<DatasetRecord>();
        int lineNumber = 0;
        string? line;
        while (true)
        {
            try { line = reader.ReadLine(); }
            catch (DecoderFallbackException e) { throw new DatasetFormatException($"{name}:{lineNumber + 1}: the file is not valid UTF-8.", e); }
            if (line is null) break;
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            records.Add(ParseLine(line, $"{name}:{lineNumber}"));
        }
        return records;
    }

    /// <summary>Parses one line; <paramref name="location"/> (<c>file:line</c>) is used in messages and stored on the record.</summary>
    /// <param name="line">A JSON object.</param>
    /// <param name="location">Where the line came from.</param>
    public static DatasetRecord ParseLine(string line, string location)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new DatasetFormatException($"{location}: invalid JSON ({e.Message}).", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DatasetFormatException($"{location}: expected a JSON object, found {root.ValueKind}.");
            var record = new DatasetRecord
            {
                Location = location,
                Id = IdString(root, "id", location),
                Category = String(root, "category", location),
                System = String(root, "system", location),
                Prompt = root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.Array ? null : String(root, "prompt", location),
                Messages = Messages(root, location),
                Response = String(root, "response", location),
                HarmfulResponse = String(root, "harmful_response", location),
                SafeResponse = String(root, "safe_response", location),
                PromptIds = Ids(root, "prompt_ids", location),
                ResponseIds = Ids(root, "response_ids", location),
                HarmfulResponseIds = Ids(root, "harmful_response_ids", location),
                SafeResponseIds = Ids(root, "safe_response_ids", location),
                Ids = Ids(root, "ids", location),
                Mask = Mask(root, "mask", location),
            };
            record = Preference(root, record, location);
            if (record.Mask is not null && record.Ids is null) throw new DatasetFormatException($"{location}: \"mask\" given without \"ids\".");
            if (record.Ids is not null && record.Mask is not null && record.Ids.Length != record.Mask.Length)
                throw new DatasetFormatException($"{location}: \"mask\" has {record.Mask.Length} entries but \"ids\" has {record.Ids.Length}.");
            if (record.Ids is null && record.PromptIds is null && record.Prompt is null && record.Messages is null)
                throw new DatasetFormatException($"{location}: the line has none of \"prompt\", \"messages\", \"prompt_ids\" or \"ids\".");
            if (record.Messages is { Count: > 0 } m && m[^1].Role != "user")
                throw new DatasetFormatException($"{location}: the last of \"messages\" must be the user turn, found role '{m[^1].Role}'.");
            return record;
        }
    }

    private static string? String(JsonElement root, string key, string location)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.String) throw new DatasetFormatException($"{location}: \"{key}\" must be a string, found {e.ValueKind}.");
        return e.GetString();
    }

    private static string? IdString(JsonElement root, string key, string location)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return e.ValueKind switch
        {
            JsonValueKind.String => e.GetString(),
            JsonValueKind.Number => e.GetRawText(),
            _ => throw new DatasetFormatException($"{location}: \"{key}\" must be a string or a number, found {e.ValueKind}."),
        };
    }

    private static IReadOnlyList<ChatMessage>? Messages(JsonElement root, string location)
    {
        if (!root.TryGetProperty("messages", out var e) || e.ValueKind == JsonValueKind.Null) return null;
        return MessageList(e, "messages", location);
    }

    private static IReadOnlyList<ChatMessage> MessageList(JsonElement e, string key, string location)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new DatasetFormatException($"{location}: \"{key}\" must be an array.");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var m in e.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object) throw new DatasetFormatException($"{location}: {key}[{i}] must be an object.");
            var role = String(m, "role", $"{location}: {key}[{i}]") ?? throw new DatasetFormatException($"{location}: {key}[{i}] has no \"role\".");
            if (role is not ("system" or "user" or "assistant"))
                throw new DatasetFormatException($"{location}: {key}[{i}] has role '{role}'; expected system, user or assistant.");
            var content = String(m, "content", $"{location}: {key}[{i}]") ?? throw new DatasetFormatException($"{location}: {key}[{i}] has no \"content\".");
            list.Add(new ChatMessage(role, content));
            i++;
        }
        if (list.Count == 0) throw new DatasetFormatException($"{location}: \"{key}\" is empty.");
        return list;
    }

    /// <summary>
    /// The preference fields (docs/training.md, "DPO"): <c>chosen</c>/<c>rejected</c> as text or as TRL's
    /// conversational lists, <c>chosen_ids</c>/<c>rejected_ids</c>, and a conversational <c>prompt</c> (a message list,
    /// read as <c>messages</c>). When chosen and rejected are whole conversations (TRL's implicit prompt), their shared
    /// messages before the last become the prompt.
    /// </summary>
    private static DatasetRecord Preference(JsonElement root, DatasetRecord record, string location)
    {
        var messages = record.Messages;
        if (root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.Array)
        {
            if (messages is not null) throw new DatasetFormatException($"{location}: the line has both \"messages\" and a conversational \"prompt\"; give one.");
            if (record.System is not null) throw new DatasetFormatException($"{location}: \"system\" cannot be combined with a conversational \"prompt\"; put the system message in the list.");
            messages = MessageList(p, "prompt", location);
        }
        var (chosen, chosenPrompt) = PreferenceSide(root, "chosen", location);
        var (rejected, rejectedPrompt) = PreferenceSide(root, "rejected", location);
        if (chosenPrompt is not null || rejectedPrompt is not null)
        {
            if (messages is not null || record.Prompt is not null || record.PromptIds is not null)
                throw new DatasetFormatException($"{location}: \"chosen\"/\"rejected\" hold whole conversations (an implicit prompt) but the line also has a prompt; give the prompt once.");
            if (chosenPrompt is null || rejectedPrompt is null)
                throw new DatasetFormatException($"{location}: with an implicit prompt both \"chosen\" and \"rejected\" must be conversations ending in the assistant turn.");
            if (!chosenPrompt.SequenceEqual(rejectedPrompt))
                throw new DatasetFormatException($"{location}: \"chosen\" and \"rejected\" must share every message before their last (the implicit prompt), but they differ.");
            messages = chosenPrompt;
        }
        return record with
        {
            Messages = messages,
            Chosen = chosen,
            Rejected = rejected,
            ChosenIds = Ids(root, "chosen_ids", location),
            RejectedIds = Ids(root, "rejected_ids", location),
        };
    }

    /// <summary>One side of a pair: its response text, and the conversation before it when the side is a whole conversation.</summary>
    private static (string? Text, IReadOnlyList<ChatMessage>? Prompt) PreferenceSide(JsonElement root, string key, string location)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return (null, null);
        if (e.ValueKind == JsonValueKind.String) return (e.GetString(), null);
        if (e.ValueKind != JsonValueKind.Array)
            throw new DatasetFormatException($"{location}: \"{key}\" must be a string or a list of messages, found {e.ValueKind}.");
        var list = MessageList(e, key, location);
        if (list[^1].Role != "assistant")
            throw new DatasetFormatException($"{location}: the last of \"{key}\" must be the assistant turn, found role '{list[^1].Role}'.");
        if (list.Count == 1) return (list[0].Content, null);
        if (list[^2].Role != "user")
            throw new DatasetFormatException($"{location}: \"{key}\" must end with one assistant turn after the user turn, found role '{list[^2].Role}' before it.");
        return (list[^1].Content, list.Take(list.Count - 1).ToArray());
    }

    private static long[]? Ids(JsonElement root, string key, string location)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Array) throw new DatasetFormatException($"{location}: \"{key}\" must be an array of token ids.");
        var ids = new long[e.GetArrayLength()];
        int i = 0;
        foreach (var v in e.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var id) || id < 0)
                throw new DatasetFormatException($"{location}: \"{key}\"[{i}] is not a non-negative integer token id.");
            ids[i++] = id;
        }
        return ids;
    }

    private static bool[]? Mask(JsonElement root, string key, string location)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Array) throw new DatasetFormatException($"{location}: \"{key}\" must be an array of 0/1.");
        var mask = new bool[e.GetArrayLength()];
        int i = 0;
        foreach (var v in e.EnumerateArray())
        {
            mask[i] = v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.Number when v.TryGetInt32(out var n) && (n == 0 || n == 1) => n == 1,
                _ => throw new DatasetFormatException($"{location}: \"{key}\"[{i}] must be 0 or 1."),
            };
            i++;
        }
        return mask;
    }
}
