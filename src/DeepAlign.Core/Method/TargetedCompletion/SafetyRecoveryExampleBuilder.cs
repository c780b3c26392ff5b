using DeepAlign.Training.Data;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// Safety-recovery contexts from harmful triples (prompt x, harmful_response h, safe_response r), METHOD.md
/// section 3 and Qi et al.'s data augmentation: draw K_pre (0 with probability p0, else uniform on
/// 1..min(K_max, |h|)), then the example is x, h_1..h_K_pre (forced, never targets), r (targets). Response
/// positions count the forced tokens, so the first target has j = K_pre + 1. With p0 = 1 every context is the plain
/// (x, r) pair. The harmful prefix is tokenized without the end-of-turn token; r ends with it (a target).
/// Accepts text lines (through an <see cref="IConversationEncoder"/>) or pre-tokenized <c>prompt_ids</c>,
/// <c>harmful_response_ids</c>, <c>safe_response_ids</c>.
/// </summary>
/// <param name="Encoder">Encoder for text records; null when every line is pre-tokenized.</param>
/// <param name="NoPrefixProbability">p0 (default 0.5, Qi et al.).</param>
/// <param name="MaxPrefixLength">K_max (default 100, Qi et al.).</param>
/// <param name="AppendEndOfTurn">Whether text safe responses end with the end-of-turn token (a target; default true).</param>
public sealed record SafetyRecoveryExampleBuilder(IConversationEncoder? Encoder = null, double NoPrefixProbability = 0.5, int MaxPrefixLength = 100,
    bool AppendEndOfTurn = true) : IExampleBuilder
{
    /// <inheritdoc />
    public bool IsDeterministic => NoPrefixProbability >= 1.0;

    /// <summary>Draws K_pre for a harmful response of <paramref name="harmfulLength"/> tokens.</summary>
    /// <param name="harmfulLength">|h|.</param>
    /// <param name="random">Random source.</param>
    /// <returns>K_pre in 0..min(K_max, |h|).</returns>
    public int DrawPrefixLength(int harmfulLength, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (!(NoPrefixProbability >= 0 && NoPrefixProbability <= 1))
            throw new ArgumentException($"SafetyRecoveryExampleBuilder.NoPrefixProbability = {NoPrefixProbability}: must be in [0, 1].", nameof(NoPrefixProbability));
        if (MaxPrefixLength < 1)
            throw new ArgumentException($"SafetyRecoveryExampleBuilder.MaxPrefixLength = {MaxPrefixLength}: must be >= 1.", nameof(MaxPrefixLength));
        int cap = Math.Min(MaxPrefixLength, harmfulLength);
        // Always consume both draws so the stream of random numbers does not depend on the outcome.
        double coin = random.NextDouble();
        int k = cap >= 1 ? random.Next(1, cap + 1) : 0;
        return coin < NoPrefixProbability ? 0 : k;
    }

    /// <inheritdoc />
    public TrainingExample Build(DatasetRecord record, Random random)
    {
        ArgumentNullException.ThrowIfNull(record);
        long[] prompt = record.PromptIds ?? EncoderFor(record).EncodePrompt(record.PromptMessages());
        long[] safe = record.SafeResponseIds
            ?? (record.SafeResponse is string s ? EncoderFor(record).EncodeResponse(s, AppendEndOfTurn)
                : throw new DatasetFormatException($"{record.Location}: a harmful triple needs \"safe_response\" (or \"safe_response_ids\")."));
        long[] harmful = record.HarmfulResponseIds
            ?? (record.HarmfulResponse is string h ? EncoderFor(record).EncodeResponse(h, appendEndOfTurn: false)
                : throw new DatasetFormatException($"{record.Location}: a harmful triple needs \"harmful_response\" (or \"harmful_response_ids\")."));
        if (safe.Length == 0) throw new DatasetFormatException($"{record.Location}: the \"safe_response\" has no tokens.");
        if (prompt.Length == 0) throw new DatasetFormatException($"{record.Location}: the prompt has no tokens.");
        int k = DrawPrefixLength(harmful.Length, random);
        var example = SftExampleBuilder.Concatenate(prompt, safe, harmful[..k], record);
        return SftExampleBuilder.Checked(example);
    }

    private IConversationEncoder EncoderFor(DatasetRecord record) =>
        Encoder ?? throw new DatasetFormatException($"{record.Location}: the line is text but no tokenizer/chat template was given (pre-tokenize it as prompt_ids/harmful_response_ids/safe_response_ids, or pass an encoder).");
}
