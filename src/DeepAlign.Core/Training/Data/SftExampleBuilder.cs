using DeepAlign.Text;
using DeepAlign.Data;

namespace DeepAlign.Training.Data;

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
