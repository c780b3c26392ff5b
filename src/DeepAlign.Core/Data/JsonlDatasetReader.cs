using DeepAlign.Text;
using System.Text;
using System.Text.Json;

namespace DeepAlign.Data;

/// <summary>
/// Reads JSONL dataset files (<see cref="DatasetRecord"/>, docs/data-formats.md): one JSON object per line, UTF-8; blank
/// lines are skipped; unknown fields are ignored. A malformed line throws <see cref="DatasetFormatException"/> naming the
/// file and line number. The one reader of the library: training data, profile inputs, attack prompts and world files.
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
        CheckFile(path);
        using var reader = new StreamReader(path, new UTF8Encoding(false, true));
        var records = Read(reader, path);
        if (records.Count == 0) throw new DatasetFormatException($"{path}: the dataset is empty.");
        return records;
    }

    /// <summary>Reads records from a text reader; <paramref name="name"/> is used in error messages.</summary>
    /// <param name="reader">JSONL text.</param>
    /// <param name="name">File name for messages.</param>
    public static IReadOnlyList<DatasetRecord> Read(TextReader reader, string name) => Stream(reader, name).ToList();

    /// <summary>Streams the records of a file line by line (the file is never loaded whole).</summary>
    /// <param name="path">A <c>.jsonl</c> file.</param>
    /// <param name="cancellationToken">Checked before every line.</param>
    /// <returns>The records, in file order; enumerating throws <see cref="DatasetFormatException"/> at a malformed line
    /// or at the end of a file that held no records.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist (thrown at once).</exception>
    public static IEnumerable<DatasetRecord> StreamFile(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        CheckFile(path);
        return Iterate();

        IEnumerable<DatasetRecord> Iterate()
        {
            using var reader = new StreamReader(path, new UTF8Encoding(false, true));
            int count = 0;
            foreach (var record in Stream(reader, path, cancellationToken))
            {
                count++;
                yield return record;
            }
            if (count == 0) throw new DatasetFormatException($"{path}: the dataset is empty.");
        }
    }

    /// <summary>Longest line accepted, in characters (64 Mi); a longer line is a <see cref="DatasetFormatException"/>, never a huge allocation.</summary>
    public const int MaxLineLength = 64 * 1024 * 1024;

    /// <summary>Refuses a path that is not a regular file (FIFO, socket, device: they report size 0) before it is opened.</summary>
    private static void CheckFile(string path) =>
        DeepAlign.Runtime.SafeFiles.CheckRegularFile(path, long.MaxValue, (m, e) => new DatasetFormatException(m, e));

    private static string? ReadBoundedLine(TextReader reader, string name, int lineNumber)
    {
        var sb = new StringBuilder();
        while (true)
        {
            var c = reader.Read();
            if (c < 0) return sb.Length == 0 ? null : sb.ToString();
            if (c == '\n') return sb.ToString();
            if (c == '\r' && reader.Peek() == '\n') { reader.Read(); return sb.ToString(); }
            if (sb.Length >= MaxLineLength)
                throw new DatasetFormatException($"{name}:{lineNumber}: the line is longer than {MaxLineLength} characters.");
            sb.Append((char)c);
        }
    }

    /// <summary>Streams the records of JSONL text; <paramref name="name"/> names the source in messages and locations.</summary>
    /// <param name="reader">JSONL text.</param>
    /// <param name="name">Source name (file path).</param>
    /// <param name="cancellationToken">Checked before every line.</param>
    /// <returns>The records, in order.</returns>
    public static IEnumerable<DatasetRecord> Stream(TextReader reader, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        int lineNumber = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string? line;
            try { line = ReadBoundedLine(reader, name, lineNumber + 1); }
            catch (DecoderFallbackException e) { throw new DatasetFormatException($"{name}:{lineNumber + 1}: the file is not valid UTF-8.", e); }
            if (line is null) yield break;
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return ParseLine(line, $"{name}:{lineNumber}");
        }
    }

    /// <summary>Parses one line; <paramref name="location"/> (<c>file:line</c>) is used in messages and stored on the record.</summary>
    /// <param name="line">A JSON object.</param>
    /// <param name="location">Where the line came from.</param>
    public static DatasetRecord ParseLine(string line, string location)
    {
        // Strict: lone surrogates refused, depth bounded (DeepAlign.Runtime.SafeFiles).
        var doc = DeepAlign.Runtime.SafeFiles.ParseJson(line, location, (m, e) => new DatasetFormatException(m, e));
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DatasetFormatException($"{location}: expected a JSON object, found {root.ValueKind}.");
            string? system = String(root, "system", location), prompt = null;
            var conversation = Messages(root, location);
            string? response = String(root, "response", location);
            if (conversation is { Count: > 0 } && conversation[^1].Role == "assistant")
            {
                // A chat line whose conversation ends with the answer (TRL's conversational SFT format, chat fine-tuning
                // files): the last assistant message is the response, the messages before it the prompt.
                if (response is not null) throw new DatasetFormatException($"{location}: \"messages\" ends with an assistant turn and the line also has \"response\"; give the answer once.");
                if (conversation.Count == 1) throw new DatasetFormatException($"{location}: \"messages\" holds only an assistant turn; the user turn before it is missing.");
                response = conversation[^1].Content;
                conversation = conversation.Take(conversation.Count - 1).ToArray();
            }
            if (Completion(root, location) is { } completion)
            {
                // TRL's prompt-completion format.
                if (response is not null) throw new DatasetFormatException($"{location}: the line has both \"completion\" and a response; give the answer once.");
                response = completion;
            }
            if (root.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.Array)
            {
                // TRL's conversational prompt: a message list, read as "messages".
                if (conversation is not null) throw new DatasetFormatException($"{location}: the line has both \"messages\" and a conversational \"prompt\"; give one.");
                if (system is not null) throw new DatasetFormatException($"{location}: \"system\" cannot be combined with a conversational \"prompt\"; put the system message in the list.");
                conversation = MessageList(p, "prompt", location);
            }
            else prompt = String(root, "prompt", location);
            if (conversation is not null && prompt is not null) throw new DatasetFormatException($"{location}: the line carries both \"prompt\" and \"messages\"; use one.");
            var (chosen, chosenPrompt) = PreferenceSide(root, "chosen", location);
            var (rejected, rejectedPrompt) = PreferenceSide(root, "rejected", location);
            if (chosenPrompt is not null || rejectedPrompt is not null)
            {
                // TRL's implicit prompt: chosen and rejected are whole conversations sharing every message before the last.
                if (conversation is not null || prompt is not null || root.TryGetProperty("prompt_ids", out _))
                    throw new DatasetFormatException($"{location}: \"chosen\"/\"rejected\" hold whole conversations (an implicit prompt) but the line also has a prompt; give the prompt once.");
                if (chosenPrompt is null || rejectedPrompt is null)
                    throw new DatasetFormatException($"{location}: with an implicit prompt both \"chosen\" and \"rejected\" must be conversations ending in the assistant turn.");
                if (!chosenPrompt.SequenceEqual(rejectedPrompt))
                    throw new DatasetFormatException($"{location}: \"chosen\" and \"rejected\" must share every message before their last (the implicit prompt), but they differ.");
                conversation = chosenPrompt;
            }
            IReadOnlyList<ChatMessage>? messages = null;
            if (conversation is not null) (system, messages, prompt) = Canonical(conversation, system, location);
            var record = new DatasetRecord
            {
                Location = location,
                Id = IdString(root, "id", location),
                Category = String(root, "category", location),
                System = system,
                Prompt = prompt,
                Messages = messages,
                Response = response,
                HarmfulResponse = String(root, "harmful_response", location),
                SafeResponse = String(root, "safe_response", location),
                Chosen = chosen,
                Rejected = rejected,
                PromptIds = Ids(root, "prompt_ids", location),
                ResponseIds = Ids(root, "response_ids", location),
                HarmfulResponseIds = Ids(root, "harmful_response_ids", location),
                SafeResponseIds = Ids(root, "safe_response_ids", location),
                ChosenIds = Ids(root, "chosen_ids", location),
                RejectedIds = Ids(root, "rejected_ids", location),
                Ids = Ids(root, "ids", location),
                Mask = Mask(root, "mask", location),
            };
            if (record.Mask is not null && record.Ids is null) throw new DatasetFormatException($"{location}: \"mask\" given without \"ids\".");
            if (record.Ids is not null && record.Mask is not null && record.Ids.Length != record.Mask.Length)
                throw new DatasetFormatException($"{location}: \"mask\" has {record.Mask.Length} entries but \"ids\" has {record.Ids.Length}.");
            if (record.Ids is null && record.PromptIds is null && record.Prompt is null)
                throw new DatasetFormatException($"{location}: the line has none of \"prompt\", \"messages\", \"prompt_ids\" or \"ids\".");
            return record;
        }
    }

    private static string? String(JsonElement root, string key, string location)
    {
        if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.String) throw new DatasetFormatException($"{location}: \"{key}\" must be a string, found {e.ValueKind}.");
        return e.GetString();
    }

    /// <summary>TRL's <c>completion</c>: a string, or a list of one assistant message.</summary>
    private static string? Completion(JsonElement root, string location)
    {
        if (!root.TryGetProperty("completion", out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind == JsonValueKind.String) return e.GetString();
        if (e.ValueKind != JsonValueKind.Array)
            throw new DatasetFormatException($"{location}: \"completion\" must be a string or a list of messages, found {e.ValueKind}.");
        var list = MessageList(e, "completion", location);
        if (list.Count != 1 || list[0].Role != "assistant")
            throw new DatasetFormatException($"{location}: a conversational \"completion\" must be one assistant message.");
        return list[0].Content;
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
    /// The canonical form of a <c>messages</c> conversation: a leading system message (or the line's <c>system</c>
    /// field), the earlier turns, and the user turn; returns messages only when there are earlier turns.
    /// </summary>
    private static (string? System, IReadOnlyList<ChatMessage>? Messages, string Prompt) Canonical(
        IReadOnlyList<ChatMessage> conversation, string? system, string location)
    {
        for (int i = 1; i < conversation.Count; i++)
            if (conversation[i].Role == "system") throw new DatasetFormatException($"{location}: messages[{i}]: a system message may only come first.");
        if (conversation[^1].Role != "user")
            throw new DatasetFormatException($"{location}: the last of \"messages\" must be the user turn, found role '{conversation[^1].Role}'.");
        var turns = conversation.ToList();
        if (turns[0].Role == "system")
        {
            if (system is not null) throw new DatasetFormatException($"{location}: the line carries both \"system\" and a system message.");
            system = turns[0].Content;
            turns.RemoveAt(0);
        }
        string prompt = turns[^1].Content;
        if (turns.Count == 1) return (system, null, prompt);
        if (system is not null) turns.Insert(0, ChatMessage.System(system));
        return (null, turns, prompt);
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
