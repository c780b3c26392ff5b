namespace DeepAlign.Data;

/// <summary>How <see cref="JsonlDatasetWriter"/> lays a record out (docs/data-formats.md); every layout reads back with
/// <see cref="JsonlDatasetReader"/>.</summary>
public enum JsonlLayout
{
    /// <summary>DeepAlign's canonical line: <c>system</c> + <c>prompt</c> (or <c>messages</c> with earlier turns), then
    /// every response field; reads back to an equal record.</summary>
    Canonical,

    /// <summary>Chat <c>messages</c> (OpenAI chat fine-tuning and TRL's conversational SFT format): the prompt conversation
    /// (system message first) followed by the <c>response</c> as the final assistant message when the record has one; the
    /// other response fields follow as in <see cref="Canonical"/>. Reads back to an equal record.</summary>
    Chat,

    /// <summary>TRL's conversational preference format: <c>prompt</c> as a message list, <c>chosen</c> and <c>rejected</c>
    /// as one assistant message each; chosen = <c>chosen</c>, else <c>safe_response</c>; rejected = <c>rejected</c>, else
    /// <c>harmful_response</c> (a harmful triple is a DPO pair). Reads back with <c>chosen</c>/<c>rejected</c> set.</summary>
    Preference,
}
