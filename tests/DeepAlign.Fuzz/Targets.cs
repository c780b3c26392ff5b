using System.Text;
using DeepAlign.Checkpoints;
using DeepAlign.Configuration;
using DeepAlign.Data;
using DeepAlign.Evaluation.Judges;
using DeepAlign.Models;
using DeepAlign.Organism;
using DeepAlign.Text;
using DeepAlign.Text.Jinja;
using DeepAlign.Training;

namespace DeepAlign.Fuzz;

/// <summary>One fuzzed format: how one input is exercised, and which exception types are the format's typed errors.</summary>
internal sealed record FuzzTarget(string Name, string FileName, Type[] Expected, Action<byte[], string> Run);

/// <summary>The parsers DeepAlign exposes to files from strangers (docs/reliability.md).</summary>
internal static class Targets
{
    private static readonly string Seeds = Path.Combine(AppContext.BaseDirectory, "corpus");

    private static string SeedText(string target, string file) => File.ReadAllText(Path.Combine(Seeds, target, file));

    public static readonly FuzzTarget[] All =
    [
        new("safetensors", "model.safetensors", [typeof(CheckpointFormatException)], (data, dir) =>
        {
            var path = Write(dir, "model.safetensors", data);
            using var file = SafetensorsFile.Open(path);
            foreach (var t in file.Tensors.Take(8))
                if (t.ByteLength <= 1 << 20)
                {
                    using var tensor = file.Load(t.Name);
                }
        }),
        new("index", "model.safetensors.index.json", [typeof(CheckpointFormatException)], (data, dir) =>
        {
            Write(dir, "model.safetensors.index.json", data);
            File.Copy(Path.Combine(Seeds, "safetensors", "seed-f32.safetensors"), Path.Combine(dir, "model-00001-of-00001.safetensors"), overwrite: true);
            using var checkpoint = SafetensorsCheckpoint.Open(dir);
            _ = checkpoint.TensorNames.Count;
        }),
        new("config", "config.json", [typeof(CheckpointFormatException)], (data, dir) =>
        {
            var path = Write(dir, "config.json", data);
            var config = HfConfigFiles.ReadModelConfig(path);
            HfConfigFiles.ValidateModelConfig(config, path);
            // The FromPretrained pre-check against a checkpoint header, without building modules.
            File.Copy(Path.Combine(Seeds, "config", "tiny.safetensors"), Path.Combine(dir, "model.safetensors"), overwrite: true);
            using var checkpoint = SafetensorsCheckpoint.Open(dir);
            ModelLoadPreflight.Check(path, config, checkpoint);
        }),
        new("generation_config", "generation_config.json", [typeof(CheckpointFormatException)], (data, dir) =>
        {
            var path = Write(dir, "generation_config.json", data);
            _ = HfConfigFiles.ReadGenerationConfig(path);
        }),
        new("tokenizer", "tokenizer.json", [typeof(TokenizerFormatException)], (data, dir) =>
        {
            var path = Write(dir, "tokenizer.json", data);
            var t = HfTokenizer.FromFiles(path, limits: FastLimits);
            Exercise(t);
        }),
        new("tokenizer_config", "tokenizer_config.json", [typeof(TokenizerFormatException), typeof(ChatTemplateException)], (data, dir) =>
        {
            var tok = Path.Combine(dir, "tokenizer.json");
            File.Copy(Path.Combine(Seeds, "tokenizer", "bpe.json"), tok, overwrite: true);
            var path = Write(dir, "tokenizer_config.json", data);
            var t = HfTokenizer.FromFiles(tok, path, limits: FastLimits);
            Exercise(t);
            if (t.ChatTemplate is not null)
                _ = ChatTemplate.For(t).Render([ChatMessage.System("s"), ChatMessage.User("hi"), ChatMessage.Assistant("ok"), ChatMessage.User("again")]);
        }),
        new("jinja", "template.jinja", [typeof(ChatTemplateException)], (data, dir) =>
        {
            var text = Encoding.UTF8.GetString(data);
            var template = new JinjaTemplate(text, JinjaBudget);
            _ = template.Render(new Dictionary<string, object?>
            {
                ["messages"] = new List<object?>
                {
                    new Dictionary<string, object?> { ["role"] = "system", ["content"] = "sys" },
                    new Dictionary<string, object?> { ["role"] = "user", ["content"] = "hello" },
                    new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "hi" },
                },
                ["add_generation_prompt"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["tools"] = null,
            });
        }),
        new("jsonl", "data.jsonl", [typeof(DatasetFormatException)], (data, dir) =>
        {
            var path = Write(dir, "data.jsonl", data);
            foreach (var r in JsonlDatasetReader.StreamFile(path)) _ = r.Texts().Count();
        }),
        new("csv", "data.csv", [typeof(DatasetFormatException)], (data, dir) =>
        {
            var path = Write(dir, "data.csv", data);
            foreach (var r in DatasetReader.StreamFile(path)) _ = r.Texts().Count();
        }),
        new("judge", "judge.json", [typeof(JudgeSpecFormatException)], (data, dir) =>
        {
            var path = Write(dir, "judge.json", data);
            _ = JudgeSpec.Read(path);
        }),
        new("trainer_state", "trainer_state.json", [typeof(CheckpointFormatException)], (data, dir) =>
        {
            var ck = Directory.CreateDirectory(Path.Combine(dir, "checkpoint-000001")).FullName;
            Write(ck, "trainer_state.json", data);
            _ = TrainingCheckpoints.StepOf(ck);
            _ = TrainingCheckpoints.FindLatest(dir);
        }),
        new("world_tokenizer", "tokenizer.json", [typeof(TokenizerFormatException)], (data, dir) =>
        {
            var path = Write(dir, "tokenizer.json", data);
            _ = WordLevelTokenizerFiles.ReadVocabulary(path);
        }),
    ];

    /// <summary>Tight budgets so that a hostile input is refused in milliseconds (the defaults are far larger).</summary>
    private static readonly JinjaLimits JinjaBudget = new()
    {
        MaxIterations = 200_000, MaxRangeLength = 100_000, MaxStringLength = 1_000_000, MaxStringWork = 20_000_000, MaxOutputLength = 1_000_000,
    };

    private static readonly TokenizerLimits FastLimits = new() { RegexMatchTimeout = TimeSpan.FromMilliseconds(200) };

    private static void Exercise(HfTokenizer t)
    {
        var ids = t.Encode("Hello wörld, abc ab \ud83d\ude00 <s> x y", addSpecialTokens: true);
        var valid = ids.Where(i => t.IdToToken(i) is not null).ToArray();
        _ = t.Decode(valid);
        _ = t.Decode(valid, skipSpecialTokens: true);
    }

    private static string Write(string dir, string name, byte[] data)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, data);
        return path;
    }

    public static FuzzTarget Get(string name) =>
        All.FirstOrDefault(t => t.Name == name) ?? throw new ArgumentException($"Unknown target '{name}'; targets: {string.Join(", ", All.Select(t => t.Name))}.");

    /// <summary>Whether <paramref name="e"/> is one of the target's typed errors (anything else is an unexpected outcome).</summary>
    public static bool IsExpected(FuzzTarget target, Exception e) => target.Expected.Any(t => t.IsInstanceOfType(e));
}
