using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using DeepAlign.Runtime;
using DeepAlign.Text;

namespace DeepAlign.Data;

/// <summary>
/// Writes <see cref="DatasetRecord"/>s as JSONL that <see cref="JsonlDatasetReader"/> reads back to equal records.
/// Output is deterministic: fixed field order, no indentation, no escaping of non-ASCII text, <c>\n</c> after every line.
/// </summary>
public static class JsonlDatasetWriter
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>Formats one record as a JSON line (without the line end) in the canonical layout.</summary>
    /// <param name="record">The record.</param>
    public static string FormatLine(DatasetRecord record) => FormatLine(record, JsonlLayout.Canonical);

    /// <summary>Formats one record as a JSON line (without the line end).</summary>
    /// <param name="record">The record.</param>
    /// <param name="layout">The layout (<see cref="JsonlLayout"/>).</param>
    /// <exception cref="DatasetFormatException"><see cref="JsonlLayout.Chat"/> or <see cref="JsonlLayout.Preference"/> for
    /// a record without a text prompt, or <see cref="JsonlLayout.Preference"/> for one without both sides of a pair; the
    /// message names the record's location.</exception>
    public static string FormatLine(DatasetRecord record, JsonlLayout layout)
    {
        ArgumentNullException.ThrowIfNull(record);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            if (record.Id is not null) w.WriteString("id", record.Id);
            if (record.Category is not null) w.WriteString("category", record.Category);
            switch (layout)
            {
                case JsonlLayout.Preference:
                    WritePreference(w, record);
                    break;
                case JsonlLayout.Chat:
                    if (record.Prompt is null && record.Messages is null)
                        throw new DatasetFormatException($"{record.Location}: the chat layout needs a text prompt; the record is pre-tokenized.");
                    WriteMessages(w, "messages", record.Response is null ? record.PromptMessages() : [.. record.PromptMessages(), ChatMessage.Assistant(record.Response)]);
                    WriteResponses(w, record, response: false);
                    break;
                case JsonlLayout.Canonical:
                    if (record.Messages is { Count: > 0 } messages) WriteMessages(w, "messages", messages);
                    else
                    {
                        if (record.System is not null) w.WriteString("system", record.System);
                        if (record.Prompt is not null) w.WriteString("prompt", record.Prompt);
                    }
                    WriteResponses(w, record, response: true);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(layout), layout, "Unknown layout.");
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes records as JSONL (UTF-8 without BOM, <c>\n</c> after every line), atomically, in the canonical layout.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="records">The records.</param>
    public static void Write(string path, IEnumerable<DatasetRecord> records) => Write(path, records, JsonlLayout.Canonical);

    /// <summary>Writes records as JSONL (UTF-8 without BOM, <c>\n</c> after every line), atomically: nothing is written
    /// when a record cannot be laid out.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="records">The records.</param>
    /// <param name="layout">The layout (<see cref="JsonlLayout"/>).</param>
    /// <exception cref="DatasetFormatException">A record does not fit the layout (see <see cref="FormatLine(DatasetRecord, JsonlLayout)"/>).</exception>
    public static void Write(string path, IEnumerable<DatasetRecord> records, JsonlLayout layout)
    {
        ArgumentNullException.ThrowIfNull(records);
        var sb = new StringBuilder();
        foreach (var record in records) sb.Append(FormatLine(record, layout)).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static void WriteResponses(Utf8JsonWriter w, DatasetRecord record, bool response)
    {
        if (response && record.Response is not null) w.WriteString("response", record.Response);
        if (record.HarmfulResponse is not null) w.WriteString("harmful_response", record.HarmfulResponse);
        if (record.SafeResponse is not null) w.WriteString("safe_response", record.SafeResponse);
        if (record.Chosen is not null) w.WriteString("chosen", record.Chosen);
        if (record.Rejected is not null) w.WriteString("rejected", record.Rejected);
        WriteIds(w, "prompt_ids", record.PromptIds);
        WriteIds(w, "response_ids", record.ResponseIds);
        WriteIds(w, "harmful_response_ids", record.HarmfulResponseIds);
        WriteIds(w, "safe_response_ids", record.SafeResponseIds);
        WriteIds(w, "chosen_ids", record.ChosenIds);
        WriteIds(w, "rejected_ids", record.RejectedIds);
        WriteIds(w, "ids", record.Ids);
        if (record.Mask is { } mask)
        {
            w.WriteStartArray("mask");
            foreach (var b in mask) w.WriteNumberValue(b ? 1 : 0);
            w.WriteEndArray();
        }
    }

    private static void WritePreference(Utf8JsonWriter w, DatasetRecord record)
    {
        if (record.Prompt is null && record.Messages is null)
            throw new DatasetFormatException($"{record.Location}: the preference layout needs a text prompt; the record is pre-tokenized.");
        string chosen = record.Chosen ?? record.SafeResponse
            ?? throw new DatasetFormatException($"{record.Location}: the preference layout needs \"chosen\" (or \"safe_response\"); the record has neither.");
        string rejected = record.Rejected ?? record.HarmfulResponse
            ?? throw new DatasetFormatException($"{record.Location}: the preference layout needs \"rejected\" (or \"harmful_response\"); the record has neither.");
        WriteMessages(w, "prompt", record.PromptMessages());
        WriteMessages(w, "chosen", [ChatMessage.Assistant(chosen)]);
        WriteMessages(w, "rejected", [ChatMessage.Assistant(rejected)]);
    }

    private static void WriteMessages(Utf8JsonWriter w, string name, IReadOnlyList<ChatMessage> messages)
    {
        w.WriteStartArray(name);
        foreach (var m in messages)
        {
            w.WriteStartObject();
            w.WriteString("role", m.Role);
            w.WriteString("content", m.Content);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteIds(Utf8JsonWriter w, string name, long[]? ids)
    {
        if (ids is null) return;
        w.WriteStartArray(name);
        foreach (var id in ids) w.WriteNumberValue(id);
        w.WriteEndArray();
    }
}
