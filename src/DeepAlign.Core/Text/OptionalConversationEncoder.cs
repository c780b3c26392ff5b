namespace DeepAlign.Text;

/// <summary>The encoder of a model folder for trainers whose data may be pre-tokenized (docs/reliability.md).</summary>
internal static class OptionalConversationEncoder
{
    /// <summary>
    /// The folder's encoder, or null when it has no tokenizer.json or its tokenizer_config.json has no chat_template:
    /// pre-tokenized lines need neither, and a text line then fails naming the line instead of the whole run failing.
    /// </summary>
    public static ConversationEncoder? FromFolder(string modelDirectory)
    {
        if (!File.Exists(Path.Combine(modelDirectory, HfTokenizer.TokenizerFileName))) return null;
        var tokenizer = HfTokenizer.FromPretrained(modelDirectory);
        return tokenizer.ChatTemplate is null ? null : ConversationEncoder.For(tokenizer);
    }
}
