using DeepAlign.Text;
using DeepAlign.Data;
namespace DeepAlign.Training.Data;

/// <summary>Builds a <see cref="TrainingExample"/> from a record.</summary>
public interface IExampleBuilder
{
    /// <summary>
    /// True when <see cref="Build"/> ignores its random source; such examples are built once when the data is
    /// loaded. Random builders (e.g. a random harmful-prefix length) are rebuilt at every draw.
    /// </summary>
    bool IsDeterministic { get; }

    /// <summary>Builds the example; throws <see cref="DatasetFormatException"/> naming <see cref="DatasetRecord.Location"/>.</summary>
    /// <param name="record">The dataset line.</param>
    /// <param name="random">Random source seeded from (seed, source, epoch, index): identical after a resume.</param>
    TrainingExample Build(DatasetRecord record, Random random);
}

/// <summary>
/// Plain supervised fine-tuning examples: prompt then response, every response token a target.
/// Accepts <c>ids</c> + <c>mask</c>, <c>prompt_ids</c> + <c>response_ids</c> (or the pre-tokenized form of
/// <see cref="ResponseField"/>), or text rendered through an <see cref="IConversationEncoder"/>.
/// </summary>
/// <param name="Encoder">Encoder for text records; null when every line is pre-tokenized.</param>
/// <param name="ResponseField">Which response to train on: <c>response</c> (default), <c>safe_response</c> or <c>harmful_response</c>.</param>
/// <param name="AppendEndOfTurn">Whether text responses end with the end-of-turn token (a target; default true).</param>
public sealed record SftExampleBuilder(IConversationEncoder? Encoder = null, string ResponseField = "response", bool AppendEndOfTurn = true) : IExampleBuilder
{
    /// <inheritdoc />
    public bool IsDeterministic => true;

    /// <inheritdoc />
    public TrainingExample Build(DatasetRecord record, Random random)
    {
        if (record.Ids is not null)
        {
            var mask = record.Mask ?? throw new DatasetFormatException($"{record.Location}: \"ids\" needs a \"mask\" marking the target tokens.");
            int start = Array.IndexOf(mask, true);
            return Checked(new TrainingExample { Ids = record.Ids, Targets = mask, ResponseStart = start < 0 ? record.Ids.Length : start, Id = record.Id, Location = record.Location });
        }
        long[] prompt = record.PromptIds ?? EncoderFor(record).EncodePrompt(record.PromptMessages());
        long[] response = ResponseIds(record);
        if (response.Length == 0) throw new DatasetFormatException($"{record.Location}: the \"{ResponseField}\" has no tokens.");
        return Checked(Concatenate(prompt, response, forced: Array.Empty<long>(), record));
    }

    private long[] ResponseIds(DatasetRecord record)
    {
        (string? text, long[]? ids) = ResponseField switch
        {
            "response" => (record.Response, record.ResponseIds),
            "safe_response" => (record.SafeResponse, record.SafeResponseIds),
            "harmful_response" => (record.HarmfulResponse, record.HarmfulResponseIds),
            _ => throw new ArgumentException($"Unknown response field '{ResponseField}'; use response, safe_response or harmful_response.", nameof(ResponseField)),
        };
        if (ids is not null) return ids;
        if (text is null) throw new DatasetFormatException($"{record.Location}: the line has no \"{ResponseField}\" (nor \"{ResponseField}_ids\").");
        return EncoderFor(record).EncodeResponse(text, AppendEndOfTurn);
    }

    private IConversationEncoder EncoderFor(DatasetRecord record) =>
        Encoder ?? throw new DatasetFormatException($"{record.Location}: the line is text but no tokenizer/chat template was given (pre-tokenize it as prompt_ids/response_ids, or pass an encoder).");

    internal static TrainingExample Concatenate(long[] prompt, long[] response, long[] forced, DatasetRecord record)
    {
        var ids = new long[prompt.Length + forced.Length + response.Length];
        prompt.CopyTo(ids, 0);
        forced.CopyTo(ids, prompt.Length);
        response.CopyTo(ids, prompt.Length + forced.Length);
        var targets = new bool[ids.Length];
        for (int i = prompt.Length + forced.Length; i < ids.Length; i++) targets[i] = true;
        if (ids.Length > 0 && targets[0])
            throw new DatasetFormatException($"{record.Location}: the prompt is empty, so the first response token has nothing to be predicted from.");
        return new TrainingExample { Ids = ids, Targets = targets, ResponseStart = prompt.Length, ForcedPrefixLength = forced.Length, Id = record.Id, Location = record.Location };
    }

    internal static TrainingExample Checked(TrainingExample example)
    {
        example.Validate();
        return example;
    }
}

/// <summary>
/// Safety-recovery contexts (METHOD.md section 3; Qi et al. 2024 Eq. 2) from harmful triples: the prompt x, then the
/// first K_pre tokens of the harmful response h as a forced (non-target) prefix, then the safe response r as the
/// targets. K_pre is 0 with probability <see cref="ZeroPrefixProbability"/>, else uniform on 1..min(K_max, |h|),
/// drawn afresh at every draw from the data stream's seeded random source (so it is reproducible and resumable).
/// Response positions of r therefore start at j = K_pre + 1.
/// </summary>
/// <param name="Encoder">Encoder for text records; null when lines carry prompt_ids / harmful_response_ids / safe_response_ids.</param>
/// <param name="ZeroPrefixProbability">p0: probability of K_pre = 0. Default 0.5 (METHOD.md section 3).</param>
/// <param name="MaxPrefixLength">K_max. Default 100 (METHOD.md section 3).</param>
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
