using DeepAlign.Data;
using DeepAlign.Text;

namespace DeepAlign.Training.Data;

/// <summary>
/// Preference pairs for DPO (docs/training.md, "DPO"): one shared prompt x, a chosen response y_w and a rejected
/// response y_l. The example built is the chosen sequence (x, y_w) with <see cref="TrainingExample.Rejected"/> set to
/// (x, y_l); every response token is a target, and text responses end with the end-of-turn token (a target), as SFT
/// responses do. <see cref="BatchCollator"/> keeps the two sequences of a pair in the same micro-batch.
/// </summary>
/// <remarks>
/// Which fields are read, per line:
/// <list type="bullet">
/// <item>the prompt: <c>prompt_ids</c>, else the conversation from <c>messages</c>, a conversational <c>prompt</c>, or
/// <c>system</c> + <c>prompt</c> rendered through the <see cref="Encoder"/>;</item>
/// <item>the responses: <c>chosen_ids</c>/<c>rejected_ids</c> or <c>chosen</c>/<c>rejected</c> (TRL's preference
/// format) when the line has any of them; otherwise a harmful line's <c>safe_response</c> (chosen) and
/// <c>harmful_response</c> (rejected), or their <c>_ids</c> forms.</item>
/// </list>
/// </remarks>
/// <param name="Encoder">Encoder for text records; null when every line is pre-tokenized.</param>
/// <param name="AppendEndOfTurn">Whether text responses end with the end-of-turn token (a target). Default true.</param>
public sealed record PreferenceExampleBuilder(IConversationEncoder? Encoder = null, bool AppendEndOfTurn = true) : IExampleBuilder
{
    /// <inheritdoc />
    public bool IsDeterministic => true;

    /// <inheritdoc />
    public TrainingExample Build(DatasetRecord record, Random random)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Ids is not null && record.PromptIds is null)
            throw new DatasetFormatException($"{record.Location}: a preference line cannot be given as \"ids\" + \"mask\"; use \"prompt_ids\" with \"chosen_ids\" and \"rejected_ids\".");
        bool preferenceFields = record.Chosen is not null || record.Rejected is not null || record.ChosenIds is not null || record.RejectedIds is not null;
        var (chosenKey, chosenText, chosenIds, rejectedKey, rejectedText, rejectedIds) = preferenceFields
            ? ("chosen", record.Chosen, record.ChosenIds, "rejected", record.Rejected, record.RejectedIds)
            : ("safe_response", record.SafeResponse, record.SafeResponseIds, "harmful_response", record.HarmfulResponse, record.HarmfulResponseIds);
        if ((chosenText is null && chosenIds is null) || (rejectedText is null && rejectedIds is null))
        {
            string missing = chosenText is null && chosenIds is null ? chosenKey : rejectedKey;
            throw new DatasetFormatException(preferenceFields
                ? $"{record.Location}: the preference line has no \"{missing}\" (nor \"{missing}_ids\")."
                : $"{record.Location}: a preference line needs \"chosen\" and \"rejected\" (or a harmful line's \"safe_response\" and \"harmful_response\"); \"{missing}\" is missing.");
        }
        long[] prompt = record.PromptIds ?? EncoderFor(record).EncodePrompt(record.PromptMessages());
        long[] chosen = chosenIds ?? EncoderFor(record).EncodeResponse(chosenText!, AppendEndOfTurn);
        long[] rejected = rejectedIds ?? EncoderFor(record).EncodeResponse(rejectedText!, AppendEndOfTurn);
        if (chosen.Length == 0) throw new DatasetFormatException($"{record.Location}: \"{chosenKey}\" has no tokens.");
        if (rejected.Length == 0) throw new DatasetFormatException($"{record.Location}: \"{rejectedKey}\" has no tokens.");
        var rejectedExample = SftExampleBuilder.Concatenate(prompt, rejected, Array.Empty<long>(), record);
        return SftExampleBuilder.Checked(SftExampleBuilder.Concatenate(prompt, chosen, Array.Empty<long>(), record) with { Rejected = rejectedExample });
    }

    private IConversationEncoder EncoderFor(DatasetRecord record) =>
        Encoder ?? throw new DatasetFormatException($"{record.Location}: the line is text but no tokenizer/chat template was given (pre-tokenize it as prompt_ids/chosen_ids/rejected_ids, or pass an encoder).");
}
