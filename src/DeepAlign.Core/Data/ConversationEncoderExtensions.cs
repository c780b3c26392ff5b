using DeepAlign.Text;

namespace DeepAlign.Data;

/// <summary><see cref="ConversationEncoder"/> over dataset records.</summary>
public static class ConversationEncoderExtensions
{
    /// <summary>Prompt ids of a record: its conversation (<see cref="DatasetRecord.PromptMessages"/>) through the chat template with the generation prompt.</summary>
    /// <param name="encoder">The encoder.</param>
    /// <param name="record">The record.</param>
    /// <exception cref="DatasetFormatException">The record has neither a prompt nor messages.</exception>
    public static long[] PromptIds(this ConversationEncoder encoder, DatasetRecord record)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(record);
        return encoder.PromptIds(record.PromptMessages());
    }
}
