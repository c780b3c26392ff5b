using DeepAlign.Text;
using DeepAlign.Training.Data;

namespace DeepAlign.Organism;

/// <summary>
/// The text side of an organism model folder: its tokenizer and ChatML template, turning <see cref="WorldItem"/>s
/// into prompt ids (METHOD.md section 0: the template rendered with the generation prompt) and response ids (the
/// response tokenized on its own), and ids back into text. Also the <see cref="IConversationEncoder"/> the training
/// data readers need.
/// </summary>
public sealed class OrganismText : IConversationEncoder
{
    /// <summary>Creates the text helper over a tokenizer whose config carries a chat template.</summary>
    /// <param name="tokenizer">The tokenizer (e.g. <see cref="HfTokenizer.FromPretrained"/> of a model folder).</param>
    public OrganismText(HfTokenizer tokenizer)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Encoder = new ConversationEncoder(tokenizer, ChatTemplate.For(tokenizer));
        EndOfTurnId = Encoder.EndOfTurnId ?? throw new InvalidOperationException($"{tokenizer.Source}: the chat template has no end-of-turn token.");
        PadId = tokenizer.PadTokenId ?? EndOfTurnId;
    }

    /// <summary>Loads the tokenizer files of a folder (<c>tokenizer.json</c>, <c>tokenizer_config.json</c>).</summary>
    /// <param name="directory">A model or world folder.</param>
    public static OrganismText FromDirectory(string directory) => new(HfTokenizer.FromPretrained(directory));

    /// <summary>The tokenizer.</summary>
    public HfTokenizer Tokenizer { get; }
    /// <summary>The conversation encoder (chat template + tokenizer).</summary>
    public ConversationEncoder Encoder { get; }
    /// <summary>Id of the end-of-turn token (<c>&lt;|im_end|&gt;</c> in the organism).</summary>
    public int EndOfTurnId { get; }
    /// <summary>Id of the padding token.</summary>
    public int PadId { get; }
    /// <summary>Tokenizer vocabulary size.</summary>
    public int VocabSize => Tokenizer.VocabSize;

    /// <summary>Prompt ids of an item (system, history and user turn, then the assistant header).</summary>
    public long[] PromptIds(WorldItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        return Encoder.EncodePrompt(item.ToMessages().Select(m => new ChatMessage(m.Role, m.Content)).ToList()).Select(i => (long)i).ToArray();
    }

    /// <summary>Ids of a response text (no end-of-turn token).</summary>
    public long[] ResponseIds(string response) => Tokenizer.Encode(response, addSpecialTokens: false).Select(i => (long)i).ToArray();

    /// <summary>Text of response ids, special tokens (the end-of-turn) dropped.</summary>
    public string Decode(IEnumerable<long> ids) => Tokenizer.Decode(ids.Select(i => (int)i), skipSpecialTokens: true);

    /// <inheritdoc />
    long[] IConversationEncoder.EncodePrompt(IReadOnlyList<ChatMessage> messages) =>
        Encoder.EncodePrompt(messages).Select(i => (long)i).ToArray();

    /// <inheritdoc />
    long[] IConversationEncoder.EncodeResponse(string response, bool appendEndOfTurn)
    {
        var ids = ResponseIds(response);
        return appendEndOfTurn ? [.. ids, EndOfTurnId] : ids;
    }

    /// <summary>A world item as a training record whose <c>response</c> is <paramref name="response"/>.</summary>
    /// <param name="item">The item (prompt, system, history).</param>
    /// <param name="response">The response to record.</param>
    /// <param name="location">Where the record came from, for error messages (e.g. <c>align.jsonl:3</c>).</param>
    /// <returns>The record.</returns>
    public static DatasetRecord ToRecord(WorldItem item, string response, string location)
    {
        IReadOnlyList<ChatMessage>? messages = item.History is { Count: > 0 }
            ? item.ToMessages().Select(m => new ChatMessage(m.Role, m.Content)).ToList()
            : null;
        return new DatasetRecord
        {
            Id = item.Id,
            Category = item.Category,
            System = messages is null ? item.System : null,
            Prompt = item.Prompt,
            Messages = messages,
            Response = response,
            Location = location,
        };
    }
}
