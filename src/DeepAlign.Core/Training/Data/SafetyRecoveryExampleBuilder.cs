using DeepAlign.Text;
using DeepAlign.Data;

namespace DeepAlign.Training.Data;

/// <summary>
/// Safety-recovery contexts (docs/method.md section 3; Qi et al. 2024 Eq. 2) from harmful triples: the prompt x, then the
/// first K_pre tokens of the harmful response h as a forced (non-target) prefix, then the safe response r as the
/// targets. K_pre is 0 with probability <see cref="ZeroPrefixProbability"/>, else uniform on 1..min(K_max, |h|),
/// drawn afresh at every draw from the data stream's seeded random source (so it is reproducible and resumable).
/// Response positions of r therefore start at j = K_pre + 1.
/// </summary>
/// <param name="Encoder">Encoder for text records; null when lines carry prompt_ids / harmful_response_ids / safe_response_ids.</param>
/// <param name="ZeroPrefixProbability">p0: probability of K_pre = 0. Default 0.5 (docs/method.md section 3).</param>
/// <param name="MaxPrefixLength">K_max. Default 100 (docs/method.md section 3).</param>
/// <param name="AppendEndOfTurn">Whether r ends with the end-of-turn token (a target). Default true.</param>
public sealed record SafetyRecoveryExampleBuilder(IConversationEncoder? Encoder = null, double ZeroPrefixProbability = 0.5, int MaxPrefixLength = 100, bool AppendEndOfTurn = true) : IExampleBuilder
{
    /// <inheritdoc />
    public bool IsDeterministic => false;

    /// <inheritdoc />
    public TrainingExample Build(DatasetRecord record, Random random)
    {
        if (!(ZeroPrefixProbability >= 0 && ZeroPrefixProbability <= 1))
            throw new ArgumentException($"ZeroPrefixProbability = {ZeroPrefixProbability}: must be in [0, 1].", nameof(ZeroPrefixProbability));
        if (MaxPrefixLength < 1) throw new ArgumentException($"MaxPrefixLength = {MaxPrefixLength}: must be at least 1.", nameof(MaxPrefixLength));
        var encoder = Encoder;
        IConversationEncoder Need() => encoder ?? throw new DatasetFormatException($"{record.Location}: the line is text but no tokenizer/chat template was given.");
        long[] prompt = record.PromptIds ?? Need().EncodePrompt(record.PromptMessages());
        long[] harmful = record.HarmfulResponseIds
            ?? (record.HarmfulResponse is string h ? Need().EncodeResponse(h, appendEndOfTurn: false)
                : throw new DatasetFormatException($"{record.Location}: a safety-recovery line needs \"harmful_response\"."));
        long[] safe = record.SafeResponseIds
            ?? (record.SafeResponse is string s ? Need().EncodeResponse(s, AppendEndOfTurn)
                : throw new DatasetFormatException($"{record.Location}: a safety-recovery line needs \"safe_response\"."));
        if (safe.Length == 0) throw new DatasetFormatException($"{record.Location}: \"safe_response\" has no tokens.");
        int k = 0;
        if (harmful.Length > 0 && random.NextDouble() >= ZeroPrefixProbability)
            k = 1 + random.Next(Math.Min(MaxPrefixLength, harmful.Length));
        return SftExampleBuilder.Checked(SftExampleBuilder.Concatenate(prompt, safe, harmful[..k], record));
    }
}
