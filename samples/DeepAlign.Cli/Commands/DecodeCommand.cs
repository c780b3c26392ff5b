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
        var shared = new GenerationArguments();
        var trace = new Option<bool>("--trace") { Description = "Report alpha_j, U_j, KL(a||b) and the chosen token's probabilities per step." };
        var command = new Command("decode", "Contrastive decoding between an aligned and a base model (docs/method.md section 2).")
        {
            baseDir, alignedDir, rule, schedule, alpha, alpha0, rampLength, beta, trace,
        };
        shared.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var decoderOptions = new ContrastiveDecoderOptions
            {
                Rule = ParseRule(parse.GetValue(rule)!),
                Alpha = ParseSchedule(parse.GetValue(schedule)!, parse.GetValue(alpha), parse.GetValue(alpha0), parse.GetValue(rampLength)),
                PlausibilityBeta = parse.GetValue(beta),
                Trace = parse.GetValue(trace),
            };
            var generation = shared.Options(parse);
            string alignedPath = parse.GetValue(alignedDir)!, basePath = parse.GetValue(baseDir)!;
            var tokenizer = LoadTokenizer(alignedPath, basePath);
            shared.Check(parse, tokenizer, $"'{alignedPath}' or '{basePath}'");

            var dev = TorchRuntime.ResolveDevice(parse.GetValue(shared.Device));
            using var aligned = shared.LoadModel(parse, alignedPath, dev);
            using var baseModel = shared.LoadModel(parse, basePath, dev);
            if (tokenizer is not null && (tokenizer.VocabSize < aligned.VocabSize || tokenizer.VocabSize < baseModel.VocabSize))
                decoderOptions = decoderOptions with { VocabSize = tokenizer.VocabSize };
            generation = generation with { StopTokenIds = GenerationArguments.StopIds(aligned.Config.EosTokenIds, tokenizer) };
            var request = shared.Request(parse, tokenizer);

            using var decoder = new ContrastiveDecoder(aligned, baseModel, decoderOptions);
            var (sequence, prefixText, text, stopString) = GenerationArguments.Run(decoder.Generator, tokenizer, request, generation, shared.StopStrings(parse));
            var traceEntries = decoder.LastTrace?.Single();

            if (parse.GetValue(shared.Json))
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
        var tokenizer = GenerationArguments.TryLoadTokenizer(alignedPath);
        var other = GenerationArguments.TryLoadTokenizer(basePath);
        if (tokenizer is not null && other is not null) VocabularyCheck.EnsureSameTokenMap(tokenizer, other, alignedPath, basePath);
        return tokenizer ?? other;
    }

    private static JsonObject ToJson(GeneratedSequence s, string? prefixText, string? text, string? stopString,
        IReadOnlyList<ContrastiveTraceEntry>? trace, HfTokenizer? tokenizer)
    {
        var o = GenerationArguments.ResultJson(s, prefixText, text, stopString);
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
