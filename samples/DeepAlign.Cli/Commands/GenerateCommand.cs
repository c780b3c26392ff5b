using System.CommandLine;
using DeepAlign.Models;
using DeepAlign.Runtime;
using Generator = DeepAlign.Generation.Generator;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign generate --model DIR (--prompt TEXT | --prompt-ids IDS) [--prefix TEXT | --prefix-ids IDS] [sampling options]
/// [--stop S]... [--json]</c>: plain decoding with one model (the reference the contrastive <c>decode</c> command is compared with).
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder (its tokenizer.json, when present, enables text in and out).", Required = true };
        var shared = new GenerationArguments();
        var command = new Command("generate", "Generate a response with one model (greedy or sampled, optional forced response prefix).") { model };
        shared.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            var generation = shared.Options(parse);
            string modelPath = parse.GetValue(model)!;
            var tokenizer = GenerationArguments.TryLoadTokenizer(modelPath);
            shared.Check(parse, tokenizer, $"'{modelPath}'");
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(shared.Device));
            using var lm = shared.LoadModel(parse, modelPath, dev);
            generation = generation with { StopTokenIds = GenerationArguments.StopIds(lm.Config.EosTokenIds, tokenizer) };
            var request = shared.Request(parse, tokenizer);
            using var generator = new Generator(lm, tokenizer is not null && tokenizer.VocabSize < lm.VocabSize ? tokenizer.VocabSize : null);
            var (sequence, prefixText, text, stopString) = GenerationArguments.Run(generator, tokenizer, request, generation, shared.StopStrings(parse));
            if (parse.GetValue(shared.Json))
                Console.WriteLine(GenerationArguments.ResultJson(sequence, prefixText, text, stopString).ToJsonString());
            else
                Console.WriteLine(text is not null ? (prefixText ?? "") + text : string.Join(" ", sequence.ForcedPrefixIds.Concat(sequence.GeneratedIds)));
            return ExitCodes.Success;
        }));
        return command;
    }
}
