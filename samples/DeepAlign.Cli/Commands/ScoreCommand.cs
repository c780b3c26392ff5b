using System.CommandLine;
using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Runtime;
using DeepAlign.Text;

namespace DeepAlign.Cli.Commands;

/// <summary>
/// <c>deepalign score --model DIR --input F --output F [--dtype] [--device]</c>: for each input line <c>{"ids": [...]}</c>
/// (or a dataset line, rendered with the model's chat template: prompt with the generation prompt, then the
/// response tokenized separately plus the end-of-turn token, docs/method.md section 0) writes
/// <c>{"ids": [...], "logprobs": [null, ...]}</c> with logprobs[i] = log p(ids[i] | ids[&lt;i]) (float32 log-softmax), through
/// <see cref="SequenceScorer.ScoreFile"/>.
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
            string modelPath = parse.GetValue(model)!, outputPath = parse.GetValue(output)!;
            var dev = TorchRuntime.ResolveDevice(parse.GetValue(device));
            var dt = CausalLanguageModel.ParseDType(parse.GetValue(dtype));
            using var lm = CausalLanguageModel.FromPretrained(modelPath, dev, dt);
            var encoder = File.Exists(Path.Combine(modelPath, HfTokenizer.TokenizerFileName)) ? ConversationEncoder.FromPretrained(modelPath) : null;
            int count = SequenceScorer.ScoreFile(lm, encoder, parse.GetValue(input)!, outputPath);
            Console.Error.WriteLine($"scored {count} line(s) -> {outputPath}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
