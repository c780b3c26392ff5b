using DeepAlign.Text;

namespace DeepAlign.Data;

/// <summary>
/// One dataset line (JSONL, UTF-8; see docs/data-formats.md):
/// <c>{"id"?, "category"?, "system"?, "prompt", "response"?, "harmful_response"?, "safe_response"?}</c>, or the same with
/// <c>"messages": [{"role", "content"}, ...]</c> (whose last message is the user turn) instead of <c>prompt</c>/<c>system</c>,
/// or pre-tokenized ids; or one CSV row (<see cref="CsvDatasetReader"/>: AdvBench, HarmBench, field CSV). Every layer reads
/// this one record (through <see cref="DatasetReader"/>): training, profiles, attacks, judges and the organism's world.
/// Unknown fields are ignored.
/// </summary>
/// <remarks>
/// The reader keeps one canonical form: a conversation of an optional system message and one user turn is stored as
/// <see cref="System"/> + <see cref="Prompt"/>; <see cref="Messages"/> is set only when there are earlier turns, and then
/// holds the whole conversation (system message first, user turn last) with <see cref="Prompt"/> set to the user turn.
/// </remarks>
public sealed record DatasetRecord
{
    /// <summary><c>id</c>: stable identifier (a number in the file is kept as its text).</summary>
    public string? Id { get; init; }
    /// <summary><c>category</c>, e.g. <c>harmful/weapons</c> or <c>benign/sort</c>.</summary>
    public string? Category { get; init; }
    /// <summary><c>system</c> prompt.</summary>
    public string? System { get; init; }
    /// <summary><c>prompt</c>: the user turn the response answers.</summary>
    public string? Prompt { get; init; }
    /// <summary>
    /// <c>messages</c>: the whole conversation before the response when it has earlier turns (system message first,
    /// user turn last); null otherwise (see the remarks).
    /// </summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary><c>response</c>: the reference response (benign answer, or the line's training target).</summary>
    public string? Response { get; init; }
    /// <summary><c>harmful_response</c>: a harmful (compliant) answer, scored by profiles and prefilled by attacks.</summary>
    public string? HarmfulResponse { get; init; }
    /// <summary><c>safe_response</c>: a safe answer (refusal) to a harmful prompt.</summary>
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

    /// <summary>File and line (<c>path:line</c>) the record was read from, for error messages; not part of equality.</summary>
    public string Location { get; init; } = "<memory>";

    /// <summary>The user turn: <see cref="Prompt"/>, or the last of <see cref="Messages"/>.</summary>
    /// <exception cref="DatasetFormatException">The record has neither.</exception>
    public string UserPrompt => Prompt ?? (Messages is { Count: > 0 } m ? m[^1].Content
        : throw new DatasetFormatException($"{Location}: the line has neither \"prompt\" nor \"messages\"."));

    /// <summary>The conversation before the response, ready for a chat template: <see cref="Messages"/>, or <see cref="System"/> + <see cref="Prompt"/>.</summary>
    /// <exception cref="DatasetFormatException">The record has neither a prompt nor messages.</exception>
    public IReadOnlyList<ChatMessage> PromptMessages()
    {
        if (Messages is { Count: > 0 }) return Messages;
        if (Prompt is null) throw new DatasetFormatException($"{Location}: the line has neither \"prompt\" nor \"messages\".");
        return System is null ? [ChatMessage.User(Prompt)] : [ChatMessage.System(System), ChatMessage.User(Prompt)];
    }

    /// <summary>Every text field the record carries (system, earlier turns, prompt, responses), e.g. for vocabulary building.</summary>
    public IEnumerable<string> Texts()
    {
        if (Messages is { Count: > 0 } m)
        {
            foreach (var message in m) yield return message.Content;
        }
        else
        {
            if (System is not null) yield return System;
            if (Prompt is not null) yield return Prompt;
        }
        if (Response is not null) yield return Response;
        if (HarmfulResponse is not null) yield return HarmfulResponse;
        if (SafeResponse is not null) yield return SafeResponse;
        if (Chosen is not null) yield return Chosen;
        if (Rejected is not null) yield return Rejected;
    }

    /// <summary>Value equality over every field but <see cref="Location"/>; lists and id arrays compare element by element.</summary>
    /// <param name="other">The other record.</param>
    public bool Equals(DatasetRecord? other) =>
        other is not null && (ReferenceEquals(this, other) ||
            Id == other.Id && Category == other.Category && System == other.System && Prompt == other.Prompt &&
            Response == other.Response && HarmfulResponse == other.HarmfulResponse && SafeResponse == other.SafeResponse &&
            Chosen == other.Chosen && Rejected == other.Rejected && Same(ChosenIds, other.ChosenIds) && Same(RejectedIds, other.RejectedIds) &&
            Same(Messages, other.Messages) && Same(PromptIds, other.PromptIds) && Same(ResponseIds, other.ResponseIds) &&
            Same(HarmfulResponseIds, other.HarmfulResponseIds) && Same(SafeResponseIds, other.SafeResponseIds) &&
            Same(Ids, other.Ids) && Same(Mask, other.Mask));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Id, Category, System, Prompt, Response, HarmfulResponse, SafeResponse);

    private static bool Same<T>(IReadOnlyList<T>? a, IReadOnlyList<T>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b);
}
