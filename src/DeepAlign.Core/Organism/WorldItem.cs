namespace DeepAlign.Organism;

/// <summary>One chat message of a dataset line written in the <c>messages</c> form.</summary>
/// <param name="Role"><c>system</c>, <c>user</c> or <c>assistant</c>.</param>
/// <param name="Content">The message text.</param>
public sealed record WorldMessage(string Role, string Content);

/// <summary>
/// One dataset line in the DESIGN.md schema:
/// <c>{"id"?, "category"?, "system"?, "prompt", "response"?, "harmful_response"?, "safe_response"?}</c>.
/// A line written as <c>"messages": [...]</c> is read into <see cref="System"/> (a leading system message),
/// <see cref="History"/> (earlier turns) and <see cref="Prompt"/> (the last message, which must be the user turn).
/// </summary>
public sealed record WorldItem
{
    /// <summary>Stable identifier (e.g. <c>hh-000001</c>); optional in user files.</summary>
    public string? Id { get; init; }
    /// <summary>Category label, e.g. <c>harmful/weapons</c> or <c>benign/sort</c>; optional in user files.</summary>
    public string? Category { get; init; }
    /// <summary>System prompt, if any.</summary>
    public string? System { get; init; }
    /// <summary>The user turn the response answers.</summary>
    public required string Prompt { get; init; }
    /// <summary>The reference response (benign answer, or the training target of the line).</summary>
    public string? Response { get; init; }
    /// <summary>A harmful (compliant) reference answer: scored by profiles, prefilled by attacks.</summary>
    public string? HarmfulResponse { get; init; }
    /// <summary>A safe answer (refusal) to a harmful prompt.</summary>
    public string? SafeResponse { get; init; }
    /// <summary>Earlier turns between the system message and the final user turn (messages form only).</summary>
    public IReadOnlyList<WorldMessage>? History { get; init; }

    /// <summary>The conversation up to and including the user turn, ready for a chat template.</summary>
    public IReadOnlyList<WorldMessage> ToMessages()
    {
        var list = new List<WorldMessage>();
        if (System is not null) list.Add(new WorldMessage("system", System));
        if (History is not null) list.AddRange(History);
        list.Add(new WorldMessage("user", Prompt));
        return list;
    }

    /// <summary>Every text field the item carries (prompt, system, history, responses), for vocabulary building.</summary>
    public IEnumerable<string> Texts()
    {
        if (System is not null) yield return System;
        if (History is not null) foreach (var m in History) yield return m.Content;
        yield return Prompt;
        if (Response is not null) yield return Response;
        if (HarmfulResponse is not null) yield return HarmfulResponse;
        if (SafeResponse is not null) yield return SafeResponse;
    }
}
