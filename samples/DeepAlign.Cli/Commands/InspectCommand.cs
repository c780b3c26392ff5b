using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepAlign.Checkpoints;
using DeepAlign.Configuration;

namespace DeepAlign.Cli.Commands;

/// <summary><c>deepalign inspect --model DIR [--json]</c>: family, stored dtype, parameter count and config of a model folder.</summary>
/// <remarks>Reads only config.json and the safetensors headers (validated), so it is instant even for large checkpoints.</remarks>
internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder (config.json + model.safetensors or a sharded index).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var command = new Command("inspect", "Show a model folder's family, stored dtype, parameter count and configuration.") { model, json };
        command.SetAction(parse => CommandRunner.Run(() =>
        {
            string dir = parse.GetValue(model)!;
            var config = HfConfigFiles.ReadModelConfig(Path.Combine(dir, HfConfigFiles.ConfigFileName));
            HfConfigFiles.ValidateModelConfig(config, Path.Combine(dir, HfConfigFiles.ConfigFileName)); // a bad file exits 1
            using var checkpoint = SafetensorsCheckpoint.Open(dir);
            long parameters = 0;
            var dtypes = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var name in checkpoint.TensorNames)
            {
                var info = checkpoint.GetInfo(name);
                parameters += info.ElementCount;
                dtypes.Add(info.DTypeName);
            }
            string family = config.ModelType;
            string dtype = string.Join(",", dtypes);
            var configJson = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, HfConfigFiles.ConfigFileName)));
            if (parse.GetValue(json))
            {
                var result = new JsonObject
                {
                    ["family"] = family,
                    ["architecture"] = config.Architectures?.FirstOrDefault(),
                    ["dtype"] = dtype,
                    ["parameters"] = parameters,
                    ["files"] = new JsonArray(checkpoint.Files.Select(f => (JsonNode)Path.GetFileName(f)!).ToArray()),
                    ["config"] = configJson,
                };
                Console.WriteLine(result.ToJsonString());
                return ExitCodes.Success;
            }
            Console.WriteLine($"family:      {family}");
            Console.WriteLine($"stored dtype: {dtype}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"parameters:  {parameters:N0}"));
            Console.WriteLine($"files:       {string.Join(", ", checkpoint.Files.Select(Path.GetFileName))}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shape:       {config.NumHiddenLayers} layers, hidden {config.HiddenSize}, heads {config.NumAttentionHeads}/{config.KeyValueHeads} kv, head_dim {config.HeadDim}, vocab {config.VocabSize}, tied head {config.TieWordEmbeddings}"));
            Console.WriteLine("config:");
            Console.WriteLine(configJson!.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Success;
        }));
        return command;
    }
}
