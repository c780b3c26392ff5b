using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepAlign.Generation;
using DeepAlign.Method;
using DeepAlign.Method.Contrastive;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign decode --base DIR --aligned DIR [--rule full|base-favored] [--schedule constant|ramp|incompleteness]
/// [--alpha A] [--alpha0 A0] [--ramp-length T] [--beta B] (--prompt TEXT | --prompt-ids IDS) [--raw]
/// [--prefix TEXT | --prefix-ids IDS] [--max-new-tokens N] [--sample] [--temperature T] [--top-p P] [--top-k K] [--seed S]
/// [--stop S]... [--device D] [--dtype T] [--trace] [--json]</c>: contrastive decoding of one prompt.
/// </summary>
internal static class DecodeCommand
{
    public static Command Create()
    {
        var baseDir = new Option<string>("--base") { Description = "Base (amateur) model folder.", Required = true };
        var alignedDir = new Option<string>("--aligned") { Description = "Aligned (expert) model folder; its tokenizer.json is used when present.", Required = true };
        var rule = new Option<string>("--rule") { Description = "Scoring rule: full or base-favored.", DefaultValueFactory = _ => "full" };
        var schedule = new Option<string>("--schedule") { Description = "Alpha schedule: constant, ramp or incompleteness.", DefaultValueFactory = _ => "constant" };
        var alpha = new Option<double?>("--alpha") { Description = "constant: alpha (default 1.0); ramp and incompleteness: alpha_max (default 2.0)." };
        var alpha0 = new Option<double>("--alpha0") { Description = "ramp: alpha at response position 1.", DefaultValueFactory = _ => 0.5 };
        var rampLength = new Option<int>("--ramp-length") { Description = "ramp: positions over which alpha rises (T_ramp).", DefaultValueFactory = _ => 32 };
        var beta = new Option<double>("--beta") { Description = "beta_cd of the plausibility set (0 disables the cut).", DefaultValueFactory = _ => 0.1 };
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text (rendered as one user turn with the chat template unless --raw)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt token ids, separated by commas or spaces (used as is)." };
        var raw = new Option<bool>("--raw") { Description = "Encode --prompt as is, without the chat template." };
        var prefix = new Option<string?>("--prefix") { Description = "Response prefix text forced before the model continues." };
        var prefixIds = new Option<string?>("--prefix-ids") { Description = "Response prefix token ids." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Largest number of generated tokens.", DefaultValueFactory = _ => 128 };
        var sample = new Option<bool>("--sample") { Description = "Sample instead of greedy decoding (implied by --temperature, --top-p or --top-k)." };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature (default 1.0)." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling mass (default 1.0, off)." };
        var topK = new Option<int?>("--top-k") { Description = "Top-k sampling (default 0, off)." };
        var seed = new Option<long?>("--seed") { Description = "Sampling seed." };
        var stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable; needs a tokenizer)." };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N (default: CUDA when available)." };
        var dtype = new Option<string?>("--dtype") { Description = "float32 (default on CPU), bfloat16 or float16." };
        var trace = new Option<bool>("--trace") { Description = "Report alpha_j, U_j, KL(a||b) and the chosen token's probabilities per step." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var command = new Command("decode", "Contrastive decoding between an aligned and a base model (METHOD.md section 2).")
        {
            baseDir, alignedDir, rule, schedule, alpha, alpha0, rampLength, beta, prompt, promptIds, raw, prefix, prefixIds,
            maxNew, sample, temperature, topP, topK, seed, stop, device, dtype, trace, json,
        };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var decoderOptions = new ContrastiveDecoderOptions
            {
                Rule = ParseRule(parse.GetValue(rule)!),
                Alpha = ParseSchedule(parse.GetValue(schedule)!, parse.GetValue(alpha), parse.GetValue(alpha0), parse.GetValue(rampLength)),
                PlausibilityBeta = parse.GetValue(beta),
                Trace = parse.GetValue(trace),
            };
            bool doSample = parse.GetValue(sample) || parse.GetValue(temperature) is not null || parse.GetValue(topP) is not null || parse.GetValue(topK) is not null;
            var generation = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                DoSample = doSample,
                Temperature = parse.GetValue(temperature) ?? 1.0,
                TopP = parse.GetValue(topP) ?? 1.0,
                TopK = parse.GetValue(topK) ?? 0,
                Seed = parse.GetValue(seed),
            };
            generation.Validate();
            var stops = parse.GetValue(stop) ?? Array.Empty<string>();
            if (parse.GetValue(prompt) is null == parse.GetValue(promptIds) is null)
                throw new ArgumentException("Give exactly one of --prompt and --prompt-ids.");
            if (parse.GetValue(prefix) is not null && parse.GetValue(prefixIds) is not null)
                throw new ArgumentException("Give at most one of --prefix and --prefix-ids.");

            string alignedPath = parse.GetValue(alignedDir)!, basePath = parse.GetValue(baseDir)!;
            var tokenizer = LoadTokenizer(alignedPath, basePath);
            if (tokenizer is null && (parse.GetValue(prompt) is not null || parse.GetValue(prefix) is not null || stops.Length > 0))
                throw new ArgumentException($"--prompt, --prefix and --stop need a tokenizer.json in '{alignedPath}' or '{basePath}'; use --prompt-ids / --prefix-ids.");

            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var dt = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            using var aligned = CausalLanguageModel.FromPretrained(alignedPath, dev, dt);
            using var baseModel = CausalLanguageModel.FromPretrained(basePath, dev, dt);
            if (tokenizer is not null && (tokenizer.VocabSize < aligned.VocabSize || tokenizer.VocabSize < baseModel.VocabSize))
                decoderOptions = decoderOptions with { VocabSize = tokenizer.VocabSize };
            var stopIds = new SortedSet<long>((aligned.Config.EosTokenIds ?? Array.Empty<int>()).Select(i => (long)i));
            if (tokenizer is not null) stopIds.UnionWith(tokenizer.EosTokenIds.Select(i => (long)i));
            generation = generation with { StopTokenIds = stopIds.ToArray() };

            long[] promptTokens = parse.GetValue(promptIds) is { } pids ? ParseIds(pids, "--prompt-ids") : EncodePrompt(tokenizer!, parse.GetValue(prompt)!, parse.GetValue(raw));
            long[] prefixTokens = parse.GetValue(prefixIds) is { } xids ? ParseIds(xids, "--prefix-ids")
                : parse.GetValue(prefix) is { Length: > 0 } ptext ? tokenizer!.Encode(ptext).Select(i => (long)i).ToArray() : Array.Empty<long>();
            var request = new GenerationRequest(promptTokens) { ForcedPrefixIds = prefixTokens };

            using var decoder = new ContrastiveDecoder(aligned, baseModel, decoderOptions);
            var textOptions = new TextGenerationOptions { Generation = generation, StopStrings = stops };
            GeneratedSequence sequence;
            string? text = null, prefixText = null, stopString = null;
            if (tokenizer is not null)
            {
                var result = new TextGenerator(decoder.Generator, tokenizer).Generate(new[] { request }, textOptions).Single();
                sequence = result.Sequence;
                text = result.Text;
                stopString = result.StopString;
                prefixText = tokenizer.Decode(prefixTokens.Select(i => (int)i), skipSpecialTokens: true);
            }
            else
            {
                sequence = decoder.Generate(new[] { request }, generation).Single();
            }
            var traceEntries = decoder.LastTrace?.Single();

            if (parse.GetValue(json))
                Console.WriteLine(ToJson(sequence, prefixText, text, stopString, traceEntries, tokenizer).ToJsonString());
            else
                PrintText(sequence, prefixText, text, traceEntries, tokenizer);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static ContrastiveRule ParseRule(string name) => name.Trim().ToLowerInvariant() switch
    {
        "full" => ContrastiveRule.Full,
        "base-favored" or "base-favored-only" or "basefavored" => ContrastiveRule.BaseFavoredOnly,
        _ => throw new ArgumentException($"--rule must be full or base-favored (got '{name}')."),
    };

    private static IAlphaSchedule ParseSchedule(string name, double? alpha, double alpha0, int rampLength) => name.Trim().ToLowerInvariant() switch
    {
        "constant" => new ConstantAlpha(alpha ?? 1.0).Validate(),
        "ramp" => new LinearRampAlpha(alpha0, alpha ?? 2.0, rampLength).Validate(),
        "incompleteness" => new IncompletenessDrivenAlpha(alpha ?? 2.0).Validate(),
        _ => throw new ArgumentException($"--schedule must be constant, ramp or incompleteness (got '{name}')."),
    };

    private static HfTokenizer? LoadTokenizer(string alignedPath, string basePath)
    {
        bool inAligned = File.Exists(Path.Combine(alignedPath, "tokenizer.json"));
        bool inBase = File.Exists(Path.Combine(basePath, "tokenizer.json"));
        var tokenizer = inAligned ? HfTokenizer.FromPretrained(alignedPath) : inBase ? HfTokenizer.FromPretrained(basePath) : null;
        if (inAligned && inBase)
        {
            var other = HfTokenizer.FromPretrained(basePath);
            var a = tokenizer!.GetVocabulary();
            var b = other.GetVocabulary();
            if (a.Count != b.Count || a.Any(kv => !b.TryGetValue(kv.Key, out var id) || id != kv.Value))
                throw new InvalidDataException(
                    $"The tokenizers of '{alignedPath}' and '{basePath}' map tokens to different ids; contrastive decoding needs one shared tokenizer.");
        }
        return tokenizer;
    }

    private static long[] EncodePrompt(HfTokenizer tokenizer, string prompt, bool raw)
    {
        string text = raw || tokenizer.ChatTemplate is null
            ? prompt
            : ChatTemplate.For(tokenizer).Render(new[] { ChatMessage.User(prompt) });
        bool addSpecial = raw || tokenizer.ChatTemplate is null;
        return tokenizer.Encode(text, addSpecialTokens: addSpecial).Select(i => (long)i).ToArray();
    }

    internal static long[] ParseIds(string text, string option)
    {
        var parts = text.Split(new[] { ',', ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new ArgumentException($"{option}: '{parts[i]}' is not a non-negative token id.");
        return ids;
    }

    private static JsonObject ToJson(GeneratedSequence s, string? prefixText, string? text, string? stopString,
        IReadOnlyList<ContrastiveTraceEntry>? trace, HfTokenizer? tokenizer)
    {
        var o = new JsonObject
        {
            ["prompt_ids"] = new JsonArray(s.PromptIds.Select(i => (JsonNode)i).ToArray()),
            ["prefix_ids"] = new JsonArray(s.ForcedPrefixIds.Select(i => (JsonNode)i).ToArray()),
            ["generated_ids"] = new JsonArray(s.GeneratedIds.Select(i => (JsonNode)i).ToArray()),
            ["prefix_text"] = prefixText,
            ["text"] = text,
            ["finish_reason"] = s.FinishReason switch
            {
                FinishReason.StopToken => "stop_token",
                FinishReason.StopCondition => "stop_string",
                _ => "max_new_tokens",
            },
            ["stop_string"] = stopString,
        };
        if (trace is not null)
            o["trace"] = new JsonArray(trace.Select(e => (JsonNode)new JsonObject
            {
                ["step"] = e.Step,
                ["position"] = e.ResponsePosition,
                ["token"] = e.TokenId,
                ["token_text"] = tokenizer?.IdToToken((int)e.TokenId),
                ["alpha"] = e.Alpha,
                ["u"] = e.Incompleteness,
                ["kl_aligned_base"] = e.KlAlignedBase,
                ["p_aligned"] = e.AlignedProbability,
                ["p_base"] = e.BaseProbability,
                ["p_contrastive"] = e.ContrastiveProbability,
                ["plausible"] = e.PlausibleCount,
            }).ToArray());
        return o;
    }

    private static void PrintText(GeneratedSequence s, string? prefixText, string? text, IReadOnlyList<ContrastiveTraceEntry>? trace, HfTokenizer? tokenizer)
    {
        if (text is not null) Console.WriteLine((prefixText ?? "") + text);
        else Console.WriteLine(string.Join(" ", s.ForcedPrefixIds.Concat(s.GeneratedIds)));
        if (trace is null) return;
        Console.WriteLine("   j  token            alpha      U      KL(a||b)  p_a      p_b      p_cd     |P|");
        foreach (var e in trace)
        {
            string token = tokenizer?.IdToToken((int)e.TokenId) ?? e.TokenId.ToString(CultureInfo.InvariantCulture);
            if (token.Length > 15) token = token[..15];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{e.ResponsePosition,4}  {token,-15}  {e.Alpha,6:F3}  {e.Incompleteness,6:F3}  {e.KlAlignedBase,8:F4}  {e.AlignedProbability,7:F4}  {e.BaseProbability,7:F4}  {e.ContrastiveProbability,7:F4}  {e.PlausibleCount,4}"));
        }
    }
}
