using DeepAlign.Text.Jinja;

namespace DeepAlign.Text;

/// <summary>One turn of a conversation, as chat templates see it (<c>message.role</c>, <c>message.content</c>).</summary>
/// <param name="Role">"system", "user" or "assistant" (templates may accept others, e.g. "tool").</param>
/// <param name="Content">The text of the turn.</param>
public sealed record ChatMessage(string Role, string Content)
{
    /// <summary>A system message.</summary>
    public static ChatMessage System(string content) => new("system", content);

    /// <summary>A user message.</summary>
    public static ChatMessage User(string content) => new("user", content);

    /// <summary>An assistant message.</summary>
    public static ChatMessage Assistant(string content) => new("assistant", content);

    internal JDict ToTemplateValue()
    {
        var d = new JDict();
        d["role"] = Role;
        d["content"] = Content;
        return d;
    }
}
