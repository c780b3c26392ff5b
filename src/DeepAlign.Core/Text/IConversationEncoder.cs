namespace DeepAlign.Text;

/// <summary>
/// Turns conversations into int64 ids for training and scoring: the prompt is the chat template rendered with the
/// generation prompt; a response is tokenized separately (no BOS) and appended. <see cref="ConversationEncoder"/> is the
/// implementation; the interface lets tests substitute a hand-written encoder.
/// </summary>
public interface IConversationEncoder
{
    /// <summary>Ids of the conversation up to and including the assistant header.</summary>
    /// <param name="messages">System and user messages; the last is the user turn.</param>
    long[] EncodePrompt(IReadOnlyList<ChatMessage> messages);

    /// <summary>Ids of a response text without BOS; with <paramref name="appendEndOfTurn"/>, followed by the end-of-turn id.</summary>
    /// <param name="response">Response text.</param>
    /// <param name="appendEndOfTurn">Whether to append the end-of-turn token (a training target).</param>
    long[] EncodeResponse(string response, bool appendEndOfTurn);
}
