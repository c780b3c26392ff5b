using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Training.Data;
using DeepAlign.Data;
using DeepAlign.Text;
using static TorchSharp.torch;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign score --model DIR --input F --output F [--dtype] [--device]</c>: for each input line <c>{"ids": [...]}</c>
/// (or a dataset line, rendered with the model's chat template: prompt with the generation prompt, then the
/// response tokenized separately plus the end-of-turn token, docs/method.md section 0) writes
/// <c>{"ids": [...], "logprobs": [null, ...]}</c> with logprobs[i] = log p(ids[i] | ids[&lt;i]) (float32 log-softmax).
/// </summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder.", Required = true };
        var input = new Option<string>("--input") { Description = "JSONL file, one {\"ids\": [...]} object per line.", Required = true };
        var output = new Option<string>("--output") { Description = "JSONL file to write {\"ids\": [...], \"logprobs\": [null, ...]} lines to (written atomically).", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "Weight/compute dtype: float32 (default on CPU), bfloat16 or float16; default elsewhere: the config's torch_dtype." };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N (default: CUDA when available, else CPU)." };
        var command = new Command("score", "Score token ids: per-token log-probabilities under a model.") { model, input, output, dtype, device };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string inputPath = parse.GetValue(input)!;
            if (!File.Exists(inputPath)) throw new FileNotFoundException($"Input file not found: {inputPath}", inputPath);
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var dt = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            string modelPath = parse.GetValue(model)!;
            var lines = ReadIds(inputPath, new Lazy<ConversationEncoder>(() => ConversationEncoder.FromPretrained(modelPath)));
            using var lm = CausalLanguageModel.FromPretrained(modelPath, dev, dt);
            var text = new StringBuilder();
            foreach (var (lineNumber, ids) in lines)
            {
                foreach (var id in ids)
                    if (id < 0 || id >= lm.VocabSize)
                        throw new InvalidDataException($"{inputPath}, line {lineNumber}: token id {id} is outside the model's vocabulary [0, {lm.VocabSize}).");
                var logprobs = Score(lm, ids);
                var node = new JsonObject
                {
                    ["ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()),
                    ["logprobs"] = new JsonArray(logprobs.Select(l => l is null ? null : (JsonNode)l.Value).ToArray()),
                };
                text.Append(node.ToJsonString()).Append('\n');
            }
            string outputPath = parse.GetValue(output)!;
            AtomicFile.WriteAllText(outputPath, text.ToString());
            Console.Error.WriteLine($"scored {lines.Count} line(s) -> {outputPath}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static List<(int Line, long[] Ids)> ReadIds(string path, Lazy<ConversationEncoder> encoder)
    {
        var result = new List<(int, long[])>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path}, line {lineNumber}: expected a JSON object.");
                if (!doc.RootElement.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                {
                    if (doc.RootElement.TryGetProperty("prompt", out _) || doc.RootElement.TryGetProperty("messages", out _))
                    {
                        result.Add((lineNumber, EncodeDatasetLine(line, $"{path}:{lineNumber}", encoder)));
                        continue;
                    }
                    throw new InvalidDataException($"{path}, line {lineNumber}: missing \"ids\" array (or a dataset line with \"prompt\"/\"messages\").");
                }
                var list = new List<long>();
                foreach (var e in ids.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long id))
                        throw new InvalidDataException($"{path}, line {lineNumber}: \"ids\" must contain integers, found {e.GetRawText()}.");
                    list.Add(id);
                }
                if (list.Count == 0) throw new InvalidDataException($"{path}, line {lineNumber}: \"ids\" is empty.");
                result.Add((lineNumber, list.ToArray()));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}, line {lineNumber}: invalid JSON ({e.Message}).", e);
            }
        }
        if (result.Count == 0) throw new InvalidDataException($"{path}: no input lines.");
        return result;
    }

    /// <summary>Prompt (chat template with generation prompt) + response ("response", else "harmful_response") + end-of-turn.</summary>
    private static long[] EncodeDatasetLine(string line, string location, Lazy<ConversationEncoder> encoder)
    {
        var record = JsonlDatasetReader.ParseLine(line, location);
        string? response = record.Response ?? record.HarmfulResponse;
        var prompt = encoder.Value.PromptIds(record.PromptMessages());
        return response is null ? prompt : prompt.Concat(encoder.Value.EncodeResponse(response, appendEndOfTurn: true)).ToArray();
    }

    /// <summary>log p(ids[i] | ids[&lt;i]) for i &gt;= 1; null at 0.</summary>
    internal static double?[] Score(ICausalLanguageModel model, long[] ids)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(ids, dtype: ScalarType.Int64, device: model.Device).unsqueeze(0);
        var logits = model.Forward(input);                                  // [1, T, V] float32
        var logp = logits[0].log_softmax(-1);                              // [T, V]
        var targets = input[0].narrow(0, 1, ids.Length - 1).unsqueeze(1);  // [T-1, 1]
        var picked = logp.narrow(0, 0, ids.Length - 1).gather(1, targets).squeeze(1).cpu();
        var values = picked.data<float>().ToArray();
        var result = new double?[ids.Length];
        for (int i = 1; i < ids.Length; i++) result[i] = values[i - 1];
        return result;
    }
}
