using DeepAlign.Text;
using DeepAlign.Data;

namespace DeepAlign.Method.Detection;

/// <summary>
/// Turns dataset lines (docs/data-formats.md) into <see cref="ProfileInput"/>s, streaming: text lines are rendered
/// with the chat template through a <see cref="ConversationEncoder"/> (the response tokenized on its own, no end-of-turn
/// token); pre-tokenized lines give <c>prompt_ids</c> and <c>response_ids</c> (or <c>ids</c> with a <c>mask</c>).
/// The response is the line's <c>response</c>, or else its <c>harmful_response</c> (unless a field is named).
/// </summary>
public sealed class ProfileInputReader
{
    private readonly ConversationEncoder? _encoder;
    private readonly string? _responseField;

    /// <summary>Creates a reader.</summary>
    /// <param name="encoder">Encoder for text lines; null when every line is pre-tokenized. When given, a trailing
    /// end-of-turn id in pre-tokenized responses is dropped (it is excluded from profiles).</param>
    /// <param name="responseField">Which response to profile: <c>response</c>, <c>harmful_response</c> or
    /// <c>safe_response</c>; null (default) takes <c>response</c> when present, else <c>harmful_response</c>.</param>
    /// <exception cref="ArgumentException">Unknown field name.</exception>
    public ProfileInputReader(ConversationEncoder? encoder = null, string? responseField = null)
    {
        if (responseField is not null and not ("response" or "harmful_response" or "safe_response"))
            throw new ArgumentException($"Unknown response field '{responseField}'; use response, harmful_response or safe_response.", nameof(responseField));
        _encoder = encoder;
        _responseField = responseField;
    }

    /// <summary>Converts one parsed dataset line.</summary>
    /// <param name="record">The line.</param>
    /// <returns>The input.</returns>
    /// <exception cref="DatasetFormatException">The line has no usable prompt or response, naming its location.</exception>
    public ProfileInput FromRecord(DatasetRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        string loc = record.Location;
        long[] prompt, response;
        if (record.Ids is not null)
        {
            var mask = record.Mask ?? throw new DatasetFormatException($"{loc}: \"ids\" needs a \"mask\" marking the response tokens.");
            int start = Array.IndexOf(mask, true);
            if (start < 0) throw new DatasetFormatException($"{loc}: \"mask\" marks no response token.");
            prompt = record.Ids[..start];
            response = record.Ids.Where((_, i) => i >= start && mask[i]).ToArray();
            response = DropEndOfTurn(response);
        }
        else
        {
            var (field, text, ids) = ResponseOf(record);
            if (ids is not null) response = DropEndOfTurn(ids);
            else if (text is not null) response = Encoder(loc).Encode(Messages(record), text, appendEndOfTurn: false).ResponseIds.Select(i => (long)i).ToArray();
            else throw new DatasetFormatException($"{loc}: the line has no \"{field}\" (nor \"{field}_ids\") to profile.");
            prompt = record.PromptIds ?? Encoder(loc).EncodePrompt(Messages(record)).Select(i => (long)i).ToArray();
        }
        if (prompt.Length == 0) throw new DatasetFormatException($"{loc}: the prompt is empty, so the first response token has nothing to be predicted from.");
        if (response.Length == 0) throw new DatasetFormatException($"{loc}: the response has no tokens.");
        return new ProfileInput(prompt, response) { Id = record.Id, Location = loc };
    }

    /// <summary>Streams the inputs of a JSONL file line by line (the file is never loaded whole).</summary>
    /// <param name="path">The dataset file.</param>
    /// <param name="cancellationToken">Checked before every line.</param>
    /// <returns>The inputs, in file order.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">A line is malformed (named by file and line), or the file holds no lines.</exception>
    public IEnumerable<ProfileInput> ReadJsonl(string path, CancellationToken cancellationToken = default) =>
        JsonlDatasetReader.StreamFile(path, cancellationToken).Select(FromRecord);

    /// <summary>Streams the inputs of a dataset file of any supported layout (JSONL, AdvBench, HarmBench or field CSV;
    /// <see cref="DatasetReader"/>), row by row.</summary>
    /// <param name="path">The dataset file.</param>
    /// <param name="format">Its layout; <see cref="DatasetFormat.Auto"/> (default) detects it from the extension and header.</param>
    /// <param name="cancellationToken">Checked before every line.</param>
    /// <returns>The inputs, in file order.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">A line or row is malformed (named by file and line), or the file holds none.</exception>
    public IEnumerable<ProfileInput> ReadFile(string path, DatasetFormat format = DatasetFormat.Auto, CancellationToken cancellationToken = default) =>
        DatasetReader.StreamFile(path, format, cancellationToken).Select(FromRecord);

    /// <summary>Streams the inputs of JSONL text; <paramref name="name"/> names the source in messages.</summary>
    /// <param name="reader">JSONL text.</param>
    /// <param name="name">Source name (file path).</param>
    /// <param name="cancellationToken">Checked before every line.</param>
    /// <returns>The inputs.</returns>
    /// <exception cref="DatasetFormatException">A line is malformed, or the text holds no lines.</exception>
    public IEnumerable<ProfileInput> Read(TextReader reader, string name, CancellationToken cancellationToken = default)
    {
        int count = 0;
        foreach (var record in JsonlDatasetReader.Stream(reader, name, cancellationToken))
        {
            count++;
            yield return FromRecord(record);
        }
        if (count == 0) throw new DatasetFormatException($"{name}: the dataset is empty.");
    }

    private (string Field, string? Text, long[]? Ids) ResponseOf(DatasetRecord r) => _responseField switch
    {
        "response" => ("response", r.Response, r.ResponseIds),
        "harmful_response" => ("harmful_response", r.HarmfulResponse, r.HarmfulResponseIds),
        "safe_response" => ("safe_response", r.SafeResponse, r.SafeResponseIds),
        _ when r.ResponseIds is not null || r.Response is not null => ("response", r.Response, r.ResponseIds),
        _ when r.HarmfulResponseIds is not null || r.HarmfulResponse is not null => ("harmful_response", r.HarmfulResponse, r.HarmfulResponseIds),
        _ => ("response", null, null),
    };

    private long[] DropEndOfTurn(long[] response) =>
        _encoder?.EndOfTurnId is int eot && response.Length > 0 && response[^1] == eot ? response[..^1] : response;

    private ConversationEncoder Encoder(string location) => _encoder ?? throw new DatasetFormatException(
        $"{location}: the line is text but no tokenizer/chat template was given (pre-tokenize it as prompt_ids/response_ids, or pass an encoder).");

    private static List<ChatMessage> Messages(DatasetRecord record) =>
        record.PromptMessages().Select(m => new ChatMessage(m.Role, m.Content)).ToList();
}
