using DeepAlign.Text;

namespace DeepAlign.Training.Data;

/// <summary>
/// One JSONL dataset line (DESIGN.md "Data formats"): text fields rendered through a chat template later, or
/// pre-tokenized ids. Unknown fields are ignored. Preference lines (docs/training.md, "DPO") add
/// <c>chosen</c>/<c>rejected</c>.
/// </summary>
public sealed record DatasetRecord
{
    /// <summary><c>id</c>.</summary>
    public string? Id { get; init; }
    /// <summary><c>category</c>.</summary>
    public string? Category { get; init; }
    /// <summary><c>system</c> prompt.</summary>
    public string? System { get; init; }
    /// <summary><c>prompt</c> (the user turn).</summary>
    public string? Prompt { get; init; }
    /// <summary><c>messages</c>: a conversation whose last message is the user turn (instead of prompt/system).</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary><c>response</c>.</summary>
    public string? Response { get; init; }
    /// <summary><c>harmful_response</c>.</summary>
    public string? HarmfulResponse { get; init; }
    /// <summary><c>safe_response</c>.</summary>
    public string? SafeResponse { get; init; }
    /// <summary><c>chosen</c>: the preferred response of a preference pair (TRL's preference format; a conversational
    /// <c>[{"role": "assistant", ...}]</c> is read as its content).</summary>
    public string? Chosen { get; init; }
    /// <summary><c>rejected</c>: the dispreferred response of a preference pair.</summary>
    public string? Rejected { get; init; }

    /// <summary>Pre-tokenized <c>prompt_ids</c> (the rendered prompt including the assistant header).</summary>
    public long[]? PromptIds { get; init; }
    /// <summary>Pre-tokenized <c>response_ids</c> (all targets).</summary>
    public long[]? ResponseIds { get; init; }
    /// <summary>Pre-tokenized <c>harmful_response_ids</c>.</summary>
    public long[]? HarmfulResponseIds { get; init; }
    /// <summary>Pre-tokenized <c>safe_response_ids</c>.</summary>
    public long[]? SafeResponseIds { get; init; }
    /// <summary>Pre-tokenized <c>chosen_ids</c> (all targets).</summary>
    public long[]? ChosenIds { get; init; }
    /// <summary>Pre-tokenized <c>rejected_ids</c> (all targets).</summary>
    public long[]? RejectedIds { get; init; }
    /// <summary>Pre-tokenized whole sequence <c>ids</c>, with <see cref="Mask"/>.</summary>
    public long[]? Ids { get; init; }
    /// <summary><c>mask</c>: 1 where the token of <see cref="Ids"/> is a target, 0 elsewhere.</summary>
    public bool[]? Mask { get; init; }

    /// <summary>File and line (<c>path:line</c>) the record was read from.</summary>
    public string Location { get; init; } = "<memory>";

    /// <summary>The conversation before the response, as messages (from <see cref="Messages"/>, or <see cref="System"/> + <see cref="Prompt"/>).</summary>
    public IReadOnlyList<ChatMessage> PromptMessages()
    {
        if (Messages is { Count: > 0 }) return Messages;
        var list = new List<ChatMessage>();
        if (System is not null) list.Add(new ChatMessage("system", System));
        if (Prompt is not null) list.Add(new ChatMessage("user", Prompt));
        if (list.Count == 0 || Prompt is null) throw new DatasetFormatException($"{Location}: the line has neither \"prompt\" nor \"messages\".");
        return list;
    }
}
