using System.Text;
using System.Text.Json.Nodes;
using DeepAlign.Data;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Generation;

/// <summary>
/// Teacher-forced scoring: log p(ids[i] | ids[&lt;i]) of every token of a sequence under a model (float32 log-softmax),
/// for one sequence or a whole JSONL file (<c>deepalign score</c>; docs/data-formats.md).
/// </summary>
public static class SequenceScorer
{
    /// <summary>The log-probability of each token given the ones before it; null at position 0 (nothing predicts it).</summary>
    /// <param name="model">The model.</param>
    /// <param name="ids">The sequence (at least one id, each inside the model's vocabulary).</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside [0, vocab).</exception>
    public static double?[] TokenLogProbabilities(ICausalLanguageModel model, IReadOnlyList<long> ids)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count == 0) throw new ArgumentException("The sequence is empty.", nameof(ids));
        for (int i = 0; i < ids.Count; i++)
            if (ids[i] < 0 || ids[i] >= model.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[i], $"Token id {ids[i]} at position {i} is outside the model's vocabulary [0, {model.VocabSize}).");
        var result = new double?[ids.Count];
        if (ids.Count == 1) return result;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(ids.ToArray(), dtype: ScalarType.Int64, device: model.Device).unsqueeze(0);
        var logits = model.Forward(input);                                   // [1, T, V]
        var logp = logits[0].to(ScalarType.Float32).log_softmax(-1);        // [T, V], fp32 whatever the weights
        var targets = input[0].narrow(0, 1, ids.Count - 1).unsqueeze(1);    // [T-1, 1]
        var values = logp.narrow(0, 0, ids.Count - 1).gather(1, targets).squeeze(1).cpu().data<float>().ToArray();
        for (int i = 1; i < ids.Count; i++) result[i] = values[i - 1];
        return result;
    }

    /// <summary>
    /// Scores every line of a JSONL file and writes <c>{"ids": [...], "logprobs": [null, ...]}</c> lines atomically.
    /// A line is <c>{"ids": [...]}</c>, or a dataset line rendered with the model's chat template (prompt with the
    /// generation prompt, then <c>response</c> (else <c>harmful_response</c>) tokenized on its own plus the end-of-turn).
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="encoder">The model's conversation encoder, for dataset lines; null when every line has ids.</param>
    /// <param name="inputPath">Input JSONL.</param>
    /// <param name="outputPath">Output JSONL.</param>
    /// <param name="cancellationToken">Checked between lines.</param>
    /// <returns>The number of lines scored.</returns>
    /// <exception cref="DatasetFormatException">A line is malformed, empty, has an id outside the vocabulary, or is text without a tokenizer (named by file and line).</exception>
    public static int ScoreFile(ICausalLanguageModel model, ConversationEncoder? encoder, string inputPath, string outputPath, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var text = new StringBuilder();
        int count = 0;
        foreach (var record in JsonlDatasetReader.StreamFile(inputPath, cancellationToken))
        {
            long[] ids = record.Ids ?? Encode(record, encoder);
            if (ids.Length == 0) throw new DatasetFormatException($"{record.Location}: \"ids\" is empty.");
            foreach (var id in ids)
                if (id >= model.VocabSize)
                    throw new DatasetFormatException($"{record.Location}: token id {id} is outside the model's vocabulary [0, {model.VocabSize}).");
            var logprobs = TokenLogProbabilities(model, ids);
            var node = new JsonObject
            {
                ["ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()),
                ["logprobs"] = new JsonArray(logprobs.Select(l => l is null ? null : (JsonNode)l.Value).ToArray()),
            };
            text.Append(node.ToJsonString()).Append('\n');
            count++;
        }
        AtomicFile.WriteAllText(outputPath, text.ToString());
        return count;
    }

    private static long[] Encode(DatasetRecord record, ConversationEncoder? encoder)
    {
        if (record.PromptIds is { } promptIds) return [.. promptIds, .. record.ResponseIds ?? record.HarmfulResponseIds ?? []];
        var e = encoder ?? throw new DatasetFormatException($"{record.Location}: the line is text but the model has no tokenizer.json (give \"ids\").");
        var prompt = e.PromptIds(record.PromptMessages());
        string? response = record.Response ?? record.HarmfulResponse;
        return response is null ? prompt : [.. prompt, .. e.EncodeResponse(response, appendEndOfTurn: true)];
    }
}
