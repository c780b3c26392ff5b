using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using DeepAlign.Runtime;

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

    /// <summary>Formats one record as a JSON line (without the line end).</summary>
    /// <param name="record">The record.</param>
    public static string FormatLine(DatasetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            if (record.Id is not null) w.WriteString("id", record.Id);
            if (record.Category is not null) w.WriteString("category", record.Category);
            if (record.Messages is { Count: > 0 } messages)
            {
                w.WriteStartArray("messages");
                foreach (var m in messages)
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
                if (record.System is not null) w.WriteString("system", record.System);
                if (record.Prompt is not null) w.WriteString("prompt", record.Prompt);
            }
            if (record.Response is not null) w.WriteString("response", record.Response);
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
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Writes records as JSONL (UTF-8 without BOM, <c>\n</c> after every line), atomically.</summary>
    /// <param name="path">Target file.</param>
    /// <param name="records">The records.</param>
    public static void Write(string path, IEnumerable<DatasetRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var sb = new StringBuilder();
        foreach (var record in records) sb.Append(FormatLine(record)).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static void WriteIds(Utf8JsonWriter w, string name, long[]? ids)
    {
        if (ids is null) return;
        w.WriteStartArray(name);
        foreach (var id in ids) w.WriteNumberValue(id);
        w.WriteEndArray();
    }
}
