using System.CommandLine;
using System.Globalization;
using DeepAlign.Data;
using DeepAlign.Method.Detection;
using DeepAlign.Models;
using DeepAlign.Reporting;
using DeepAlign.Runtime;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign profile --base DIR --aligned DIR --input F --output DIR [--format F] [--targets T.json] [--batch-size N] [--tau T] [--top-k K]
/// [--max-response-tokens N] [--probe N] [--generate-prefix K --max-new-tokens N] [--shard I/N] [--json] [--device D] [--dtype T]</c>:
/// the incompleteness profile of a base/aligned pair on a JSONL dataset, written as profile.json, profile.md,
/// sequences.jsonl and plots (docs/profile-report.md). With <c>--shard I/N</c> it profiles only the lines whose index
/// mod N is I and writes profile.partial.json (sufficient statistics) and sequences.jsonl; <c>deepalign merge</c> joins
/// the parts (docs/scale-out.md).
/// </summary>
internal static class ProfileCommand
{
    public static Command Create()
    {
        var baseDir = new Option<string>("--base") { Description = "Base model folder (Hugging Face layout).", Required = true };
        var alignedDir = new Option<string>("--aligned") { Description = "Aligned model folder (Hugging Face layout).", Required = true };
        var input = new Option<string>("--input") { Description = "Dataset: JSONL (text lines rendered with the chat template, or prompt_ids/response_ids) or CSV (AdvBench: the target is profiled; HarmBench with --targets).", Required = true };
        var dataset = new DatasetArguments();
        var output = new Option<string>("--output") { Description = "Report folder (created; files in it are replaced one by one).", Required = true };
        var batchSize = new Option<int?>("--batch-size") { Description = "Sequences per forward pass (default 8)." };
        var tau = new Option<double?>("--tau") { Description = "Base-favored threshold tau (default 0)." };
        var topK = new Option<int?>("--top-k") { Description = "kB, the base model's candidate set size (default 50)." };
        var maxTokens = new Option<int?>("--max-response-tokens") { Description = "Profile at most this many response tokens per line (default 256)." };
        var probe = new Option<int?>("--probe") { Description = "Run the gradient signal probe on the aligned model over the first N lines (default 32; 0 turns it off; not with --shard)." };
        var shardOption = new Option<string?>("--shard") { Description = "Profile only shard I of N (lines whose 0-based index mod N is I) and write profile.partial.json for deepalign merge." };
        var generatePrefix = new Option<int?>("--generate-prefix") { Description = "Profile the aligned model's own responses after forcing the first K response tokens (instead of the given responses)." };
        var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "New tokens generated per line with --generate-prefix (default 64).", DefaultValueFactory = _ => 64 };
        var chatFormat = new Option<string?>("--chat-format") { Description = $"Chat template when the tokenizer has none ({string.Join(", ", ChatFormats.Names)})." };
        var json = new Option<bool>("--json") { Description = "Print the JSON report instead of the summary table." };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N (default: cuda when available)." };
        var dtype = new Option<string?>("--dtype") { Description = "float32 (default on CPU), bfloat16 or float16." };
        var command = new Command("profile", "Incompleteness profile of a base/aligned pair: per-position KL, base-favored tokens, U, gradient signal.")
        {
            baseDir, alignedDir, input, output, batchSize, tau, topK, maxTokens, probe, generatePrefix, maxNewTokens, chatFormat, json, device, dtype, shardOption,
        };
        dataset.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var options = new ProfileOptions();
            if (parse.GetValue(batchSize) is int bs) options = options with { BatchSize = bs };
            if (parse.GetValue(tau) is double t) options = options with { Tau = t };
            if (parse.GetValue(topK) is int k) options = options with { TopKBase = k };
            if (parse.GetValue(maxTokens) is int m) options = options with { MaxResponseTokens = m };
            options.Validate();
            var shard = parse.GetValue(shardOption) is string sh ? ShardSpec.Parse(sh) : (ShardSpec?)null;
            int probeCount = parse.GetValue(probe) ?? (shard is null ? 32 : 0);
            if (probeCount < 0) throw new ArgumentException($"--probe must be >= 0 (got {probeCount}).");
            if (shard is not null && probeCount > 0)
                throw new ArgumentException("--probe is not sharded: run the gradient probe once without --shard (docs/scale-out.md).");
            int? prefix = parse.GetValue(generatePrefix);
            var generated = prefix is int p
                ? new GeneratedProfileOptions { ForcedPrefixTokens = p, Generation = new Generation.GenerationOptions { MaxNewTokens = parse.GetValue(maxNewTokens) } }.Validate()
                : null;
            string inputPath = parse.GetValue(input)!, outDir = parse.GetValue(output)!;
            string basePath = parse.GetValue(baseDir)!, alignedPath = parse.GetValue(alignedDir)!;
            if (!File.Exists(inputPath)) throw new FileNotFoundException($"Input file '{inputPath}' does not exist.", inputPath);
            var inputFormat = dataset.Resolve(parse, inputPath);

            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var type = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            var createdOutput = false;
            int records = 0;
            try
            {
                using var baseModel = CausalLanguageModel.FromPretrained(basePath, dev, type);
                using var alignedModel = CausalLanguageModel.FromPretrained(alignedPath, dev, type);
                var tokenizer = LoadTokenizer(alignedPath);
                var baseTokenizer = LoadTokenizer(basePath);
                ConversationEncoder? encoder = null;
                if (tokenizer is not null)
                {
                    var format = parse.GetValue(chatFormat) is string f ? ChatFormats.Parse(f) : ChatFormat.Auto;
                    if (format != ChatFormat.Auto || tokenizer.ChatTemplate is not null)
                        encoder = new ConversationEncoder(tokenizer, ChatTemplate.For(tokenizer, format));
                }
                var detector = new BaseFavoredTokenDetector(baseModel, alignedModel, tokenizer, baseTokenizer, options);
                var reader = new ProfileInputReader(encoder);
                var aggregator = new ProfileAggregator(options);
                var progress = new Progress(json: parse.GetValue(json));
                createdOutput = !Directory.Exists(outDir);
                Directory.CreateDirectory(outDir);
                using (var writer = new ProfileSequenceWriter(Path.Combine(outDir, ProfileSequenceWriter.DefaultFileName)))
                {
                    var inputs = dataset.Stream(parse, inputPath, inputFormat, cts.Token).Select(reader.FromRecord);
                    var recordIndices = new Queue<int>();
                    if (shard is ShardSpec part)
                        inputs = part.Select(inputs.Select(x => { records++; return x; })).Select(t => { recordIndices.Enqueue(t.RecordIndex); return t.Item; });
                    var profiles = generated is null
                        ? detector.Profile(inputs, progress, cts.Token)
                        : detector.ProfileGenerated(inputs, generated, progress, cts.Token);
                    // A shard's sequences keep their index in the whole dataset.
                    if (shard is not null) profiles = profiles.Select(p => p with { Index = recordIndices.Dequeue() });
                    foreach (var _ in writer.WriteAll(aggregator.AddAll(profiles))) { }
                    writer.Commit();
                }
                if (shard is ShardSpec done)
                {
                    var partial = new ProfilePartialReport
                    {
                        Shard = done, DatasetFingerprint = DatasetFingerprint.OfFile(inputPath), DatasetRecords = records, Options = options,
                        Statistics = aggregator.Statistics(), Mode = generated is null ? "teacher_forcing" : "generated",
                        ForcedPrefixTokens = generated?.ForcedPrefixTokens, BaseModel = basePath, AlignedModel = alignedPath, Input = inputPath,
                    };
                    string partialPath = AtomicFile.WriteAllText(Path.Combine(outDir, ProfilePartialReport.DefaultFileName), partial.ToJson());
                    Console.WriteLine(parse.GetValue(json) ? partial.ToJson()
                        : string.Create(CultureInfo.InvariantCulture, $"shard {done}: {partial.Statistics.Sequences} of {records} sequences; wrote {partialPath}"));
                    return ExitCodes.Success;
                }
                GradientProbeResult? probeResult = null;
                if (probeCount > 0)
                    probeResult = GradientSignalProbe.Run(alignedModel, dataset.Stream(parse, inputPath, inputFormat, cts.Token).Select(reader.FromRecord),
                        new GradientProbeOptions { MaxSequences = probeCount }, detector.VocabSize, null, cts.Token);
                var report = new ProfileReport
                {
                    Options = options,
                    Aggregates = aggregator.Result(),
                    GradientProbe = probeResult,
                    Mode = generated is null ? "teacher_forcing" : "generated",
                    ForcedPrefixTokens = generated?.ForcedPrefixTokens,
                    BaseModel = basePath,
                    AlignedModel = alignedPath,
                    Input = inputPath,
                    SequencesFile = ProfileSequenceWriter.DefaultFileName,
                };
                ProfileReportWriter.Write(outDir, report, ProfilePlots.Renderer);
                if (parse.GetValue(json)) Console.WriteLine(ProfileReportWriter.ToJson(report));
                else
                {
                    Console.WriteLine(ProfileReportWriter.ToMarkdown(report));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {outDir}"));
                }
                return ExitCodes.Success;
            }
            catch when (createdOutput)
            {
                // A run that fails (bad dataset line, cancellation) leaves no half-written report folder behind.
                try { Directory.Delete(outDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                throw;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        }));
        return command;
    }

    private static HfTokenizer? LoadTokenizer(string directory) =>
        File.Exists(Path.Combine(directory, "tokenizer.json")) ? HfTokenizer.FromPretrained(directory) : null;

    /// <summary>Progress on stderr, one line per batch.</summary>
    private sealed class Progress(bool json) : IProgress<ProfileProgress>
    {
        public void Report(ProfileProgress value)
        {
            if (!json) Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"profiled {value.Sequences} sequences ({value.Tokens} tokens)"));
        }
    }
}
