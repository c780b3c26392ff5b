using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepAlign.Data;
using DeepAlign.Method.Detection;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>
/// The gradient signal probe as targeted completion uses it (docs/targeted-completion.md, "Probe norms"): run on the
/// aligned model over the first harmful training lines (prompt + harmful reference, teacher forcing) before training,
/// its mean norms n_1..n_J give the penalty's position weights, and they are written to <c>probe-norms.json</c> for reuse.
/// </summary>
public static class TargetedCompletionProbe
{
    /// <summary>Name of the file the norms are written to in the output folder.</summary>
    public const string NormsFileName = "probe-norms.json";

    /// <summary>
    /// The probe inputs: the first <paramref name="count"/> harmful lines as prompt + harmful reference, tokenized exactly
    /// as the safety-recovery builder tokenizes them (pre-tokenized ids as they are).
    /// </summary>
    /// <param name="harmful">Harmful triples.</param>
    /// <param name="encoder">Encoder for text lines; null when every line is pre-tokenized.</param>
    /// <param name="count">Lines used.</param>
    /// <exception cref="DatasetFormatException">A line lacks what the probe needs (named by file and line).</exception>
    public static List<ProfileInput> Inputs(IReadOnlyList<DatasetRecord> harmful, IConversationEncoder? encoder, int count)
    {
        ArgumentNullException.ThrowIfNull(harmful);
        return harmful.Take(count).Select(r =>
        {
            IConversationEncoder Need() => encoder ?? throw new DatasetFormatException($"{r.Location}: the line is text but the aligned model has no tokenizer.json.");
            long[] prompt = r.PromptIds ?? Need().EncodePrompt(r.PromptMessages());
            long[] response = r.HarmfulResponseIds
                ?? (r.HarmfulResponse is string h ? Need().EncodeResponse(h, appendEndOfTurn: false)
                    : throw new DatasetFormatException($"{r.Location}: a safety-recovery line needs \"harmful_response\"."));
            return new ProfileInput(prompt, response) { Id = r.Id, Location = r.Location };
        }).ToList();
    }

    /// <summary>
    /// J: the largest response position a penalty target can reach, max over the harmful lines of min(K_max, |h|) + |r|
    /// (r with its end-of-turn token), capped by the loop's maximum sequence length. Positions past J take w_J.
    /// </summary>
    /// <param name="harmful">Harmful triples.</param>
    /// <param name="encoder">Encoder for text lines, or null.</param>
    /// <param name="maxPrefix">K_max.</param>
    /// <param name="maxLength">The loop's sequence cut, or null.</param>
    public static int Positions(IReadOnlyList<DatasetRecord> harmful, IConversationEncoder? encoder, int maxPrefix, int? maxLength)
    {
        ArgumentNullException.ThrowIfNull(harmful);
        int j = 1;
        foreach (var r in harmful)
        {
            int h = r.HarmfulResponseIds?.Length ?? (r.HarmfulResponse is string ht && encoder is not null ? encoder.EncodeResponse(ht, appendEndOfTurn: false).Length : 0);
            int s = r.SafeResponseIds?.Length ?? (r.SafeResponse is string st && encoder is not null ? encoder.EncodeResponse(st, appendEndOfTurn: true).Length : 0);
            j = Math.Max(j, Math.Min(maxPrefix, h) + s);
        }
        return maxLength is int m ? Math.Max(1, Math.Min(j, m)) : j;
    }

    /// <summary>Runs the probe on <paramref name="aligned"/> and writes <see cref="NormsFileName"/> into <paramref name="outputDirectory"/> atomically.</summary>
    /// <param name="aligned">The aligned model (left unchanged).</param>
    /// <param name="harmful">Harmful triples.</param>
    /// <param name="encoder">Encoder for text lines, or null.</param>
    /// <param name="vocabSize">Tokenizer vocabulary size the logits are cut to, or null.</param>
    /// <param name="count">Lines probed.</param>
    /// <param name="maxPrefix">K_max.</param>
    /// <param name="maxLength">The loop's sequence cut, or null.</param>
    /// <param name="outputDirectory">Where the norms file goes.</param>
    /// <param name="progress">Sequences done, or null.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The norms, the wall time and the file written.</returns>
    public static (IReadOnlyList<double> Norms, double Seconds, string File, GradientProbeResult Result) Run(ICausalLanguageModel aligned,
        IReadOnlyList<DatasetRecord> harmful, IConversationEncoder? encoder, int? vocabSize, int count, int maxPrefix, int? maxLength,
        string outputDirectory, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "The probe needs at least one sequence.");
        var inputs = Inputs(harmful, encoder, count);
        var probeOptions = new GradientProbeOptions { MaxPositions = Positions(harmful, encoder, maxPrefix, maxLength), MaxSequences = inputs.Count };
        var clock = Stopwatch.StartNew();
        var result = GradientSignalProbe.Run(aligned, inputs, probeOptions, vocabSize, progress, cancellationToken);
        double seconds = clock.Elapsed.TotalSeconds;
        var norms = result.MeanNorms;
        var file = new JsonObject
        {
            ["norms"] = new JsonArray(norms.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
            ["positions"] = probeOptions.MaxPositions,
            ["last_layers"] = probeOptions.LastLayers,
            ["sequences"] = result.Sequences,
            ["parameters"] = new JsonArray(result.ParameterNames.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
            ["seconds"] = seconds,
        };
        string path = AtomicFile.WriteAllText(Path.Combine(outputDirectory, NormsFileName), file.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return (norms, seconds, path, result);
    }

    /// <summary>Reads probe norms written by <see cref="Run"/> (an object with <c>norms</c>) or a plain JSON array of numbers.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file holds no array of numbers.</exception>
    public static double[] ReadNorms(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Probe norms file '{path}' does not exist.", path);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON ({e.Message}).", e); }
        var array = node as JsonArray ?? node?["norms"] as JsonArray
            ?? throw new InvalidDataException($"{path}: expected a JSON array of norms or an object with \"norms\".");
        return array.Select((v, i) =>
        {
            if (v is JsonValue value && value.TryGetValue<double>(out var d) && double.IsFinite(d)) return d;
            throw new InvalidDataException($"{path}: norm {i} is not a finite number.");
        }).ToArray();
    }
}
