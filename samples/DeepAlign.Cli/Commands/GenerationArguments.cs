using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using DeepAlign.Generation;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// The prompt, prefix, sampling, stop and device options shared by <c>generate</c> and <c>decode</c>, and the
/// code that turns them into a <see cref="GenerationRequest"/> and <see cref="GenerationOptions"/>.
/// </summary>
internal sealed class GenerationArguments
{
    public Option<string?> Prompt { get; } = new("--prompt") { Description = "Prompt text (rendered as one user turn with the chat template unless --raw)." };
    public Option<string?> PromptIds { get; } = new("--prompt-ids") { Description = "Prompt token ids, separated by commas or spaces (used as is)." };
    public Option<bool> Raw { get; } = new("--raw") { Description = "Encode --prompt as is, without the chat template." };
    public Option<string?> Prefix { get; } = new("--prefix") { Description = "Response prefix text forced before the model continues." };
    public Option<string?> PrefixIds { get; } = new("--prefix-ids") { Description = "Response prefix token ids." };
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens") { Description = "Largest number of generated tokens.", DefaultValueFactory = _ => 128 };
    public Option<bool> Sample { get; } = new("--sample") { Description = "Sample instead of greedy decoding (implied by --temperature, --top-p or --top-k)." };
    public Option<double?> Temperature { get; } = new("--temperature") { Description = "Sampling temperature (default 1.0)." };
    public Option<double?> TopP { get; } = new("--top-p") { Description = "Nucleus sampling mass (default 1.0, off)." };
    public Option<int?> TopK { get; } = new("--top-k") { Description = "Top-k sampling (default 0, off)." };
    public Option<long?> Seed { get; } = new("--seed") { Description = "Sampling seed." };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop string (repeatable; needs a tokenizer)." };
    public Option<string?> Device { get; } = new("--device") { Description = "cpu, cuda or cuda:N (default: CUDA when available)." };
    public Option<string?> DType { get; } = new("--dtype") { Description = "float32 (default on CPU), bfloat16, float16 or auto (bfloat16 on CPUs with native bfloat16, else float32)." };
    public Option<string?> Quantize { get; } = new("--quantize") { Description = "int8 (weight-only), w8a8 (int8 weights and activations), dense (SIMD kernels over the model's weights) or none (default)." };
    public Option<bool> Json { get; } = new("--json") { Description = "Print the result as JSON." };

    /// <summary>Adds every shared option to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (Option o in new Option[] { Prompt, PromptIds, Raw, Prefix, PrefixIds, MaxNewTokens, Sample, Temperature, TopP, TopK, Seed, Stop, Device, DType, Quantize, Json })
            command.Options.Add(o);
    }

    /// <summary>Sampling settings from the command line; stop ids are filled in by the caller.</summary>
    public GenerationOptions Options(ParseResult parse)
    {
        bool doSample = parse.GetValue(Sample) || parse.GetValue(Temperature) is not null || parse.GetValue(TopP) is not null || parse.GetValue(TopK) is not null;
        return new GenerationOptions
        {
            MaxNewTokens = parse.GetValue(MaxNewTokens),
            DoSample = doSample,
            Temperature = parse.GetValue(Temperature) ?? 1.0,
            TopP = parse.GetValue(TopP) ?? 1.0,
            TopK = parse.GetValue(TopK) ?? 0,
            Seed = parse.GetValue(Seed),
        }.Validate();
    }

    /// <summary>Loads a model folder with --dtype (auto included) and applies --quantize.</summary>
    public DeepAlign.Models.Common.DecoderOnlyCausalLM LoadModel(ParseResult parse, string directory, TorchSharp.torch.Device device)
    {
        var dtype = DeepAlign.Models.CausalLanguageModel.ParseDType(parse.GetValue(DType), device);
        var quantization = DeepAlign.Models.Quantization.QuantizationOptions.Parse(parse.GetValue(Quantize));
        var model = DeepAlign.Models.CausalLanguageModel.FromPretrained(directory, device, dtype);
        if (quantization is not null) DeepAlign.Models.Quantization.ModelQuantization.Quantize(model, quantization);
        return model;
    }

    /// <summary>Stop strings given with --stop.</summary>
    public string[] StopStrings(ParseResult parse) => parse.GetValue(Stop) ?? Array.Empty<string>();

    /// <summary>Checks the option combinations that the parser cannot, and that text options have a tokenizer.</summary>
    public void Check(ParseResult parse, ITextTokenizer? tokenizer, string tokenizerPlace)
    {
        if (parse.GetValue(Prompt) is null == parse.GetValue(PromptIds) is null)
            throw new ArgumentException("Give exactly one of --prompt and --prompt-ids.");
        if (parse.GetValue(Prefix) is not null && parse.GetValue(PrefixIds) is not null)
            throw new ArgumentException("Give at most one of --prefix and --prefix-ids.");
        if (tokenizer is null && (parse.GetValue(Prompt) is not null || parse.GetValue(Prefix) is not null || StopStrings(parse).Length > 0))
            throw new ArgumentException($"--prompt, --prefix and --stop need a tokenizer.json in {tokenizerPlace}; use --prompt-ids / --prefix-ids.");
    }

    /// <summary>The request: prompt ids (chat-rendered text or raw ids) and the forced response prefix.</summary>
    public GenerationRequest Request(ParseResult parse, HfTokenizer? tokenizer)
    {
        long[] promptTokens = parse.GetValue(PromptIds) is { } pids
            ? ParseIds(pids, "--prompt-ids")
            : EncodePrompt(tokenizer!, parse.GetValue(Prompt)!, parse.GetValue(Raw));
        long[] prefixTokens = parse.GetValue(PrefixIds) is { } xids ? ParseIds(xids, "--prefix-ids")
            : parse.GetValue(Prefix) is { Length: > 0 } text ? tokenizer!.Encode(text).Select(i => (long)i).ToArray() : Array.Empty<long>();
        return new GenerationRequest(promptTokens) { ForcedPrefixIds = prefixTokens };
    }

    /// <summary>The model's eos ids plus the tokenizer's, as stop ids.</summary>
    public static long[] StopIds(IReadOnlyList<int>? modelEos, ITextTokenizer? tokenizer)
    {
        var ids = new SortedSet<long>((modelEos ?? Array.Empty<int>()).Select(i => (long)i));
        if (tokenizer is not null) ids.UnionWith(tokenizer.EosTokenIds.Select(i => (long)i));
        return ids.ToArray();
    }

    private static long[] EncodePrompt(HfTokenizer tokenizer, string prompt, bool raw)
    {
        bool useTemplate = !raw && tokenizer.ChatTemplate is not null;
        string text = useTemplate ? ChatTemplate.For(tokenizer).Render(new[] { ChatMessage.User(prompt) }) : prompt;
        return tokenizer.Encode(text, addSpecialTokens: !useTemplate).Select(i => (long)i).ToArray();
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

    /// <summary>Runs one request through <paramref name="generator"/>, as text when a tokenizer is available.</summary>
    public static (GeneratedSequence Sequence, string? PrefixText, string? Text, string? StopString) Run(
        Generator generator, HfTokenizer? tokenizer, GenerationRequest request, GenerationOptions generation, string[] stopStrings)
    {
        if (tokenizer is null)
            return (generator.Generate(new[] { request }, generation).Single(), null, null, null);
        var textOptions = new TextGenerationOptions { Generation = generation, StopStrings = stopStrings };
        var result = new TextGenerator(generator, tokenizer).Generate(new[] { request }, textOptions).Single();
        string prefixText = tokenizer.Decode(request.ForcedPrefixIds.Select(i => (int)i), skipSpecialTokens: true);
        return (result.Sequence, prefixText, result.Text, result.StopString);
    }

    /// <summary>Loads the tokenizer of a model folder, or null when it has no tokenizer.json.</summary>
    public static HfTokenizer? TryLoadTokenizer(string directory) =>
        File.Exists(Path.Combine(directory, "tokenizer.json")) ? HfTokenizer.FromPretrained(directory) : null;

    /// <summary>The JSON fields every generation command prints.</summary>
    public static JsonObject ResultJson(GeneratedSequence s, string? prefixText, string? text, string? stopString) => new()
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
}
