using System.Diagnostics;
using System.Text.Json.Nodes;
using CsCheck;
using DeepAlign.Checkpoints;
using DeepAlign.Configuration;
using DeepAlign.Data;
using DeepAlign.Models;
using DeepAlign.Testing;
using DeepAlign.Tests.Training;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Core.Tests.Reliability;

/// <summary>config.json, safetensors headers and training checkpoints from strangers (docs/reliability.md).</summary>
public sealed class ModelAndCheckpointHostileInputTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("deepalign-hostile-model-");

    public void Dispose() => _root.Delete(recursive: true);

    private string TinyFolder()
    {
        var dir = _root.CreateSubdirectory(Guid.NewGuid().ToString("N")).FullName;
        TinyModelFactory.SaveFolder(dir, TinyModelFactory.LlamaConfig(vocabSize: 32, hiddenSize: 16, layers: 2, heads: 2, kvHeads: 1), seed: 1);
        return dir;
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    [Theory]
    [InlineData("num_hidden_layers", 1_000_000, "num_hidden_layers")]
    [InlineData("vocab_size", 2_000_000_000, "vocab_size")]
    [InlineData("num_hidden_layers", 3, "num_hidden_layers")]
    [InlineData("vocab_size", 33, "vocab_size")]
    [InlineData("intermediate_size", 65, "intermediate_size")]
    [InlineData("num_attention_heads", 4, "head_dim")] // head_dim defaults to hidden_size / heads
    public void Config_sizes_that_disagree_with_the_checkpoint_fail_in_the_precheck_before_any_module_is_built(string key, long value, string named)
    {
        var dir = TinyFolder();
        EditConfig(dir, c => c[key] = value);
        var sw = Stopwatch.StartNew();
        var act = () => CausalLanguageModel.FromPretrained(dir, CPU).Dispose();
        var e = act.Should().Throw<ModelConfigException>().Which;
        sw.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5), "nothing of the claimed size is allocated");
        e.Message.Should().Contain(Path.Combine(dir, "config.json")).And.Contain(named);
    }

    [Theory]
    [InlineData("rope_theta", "\"NaN\"", "rope_theta")]
    [InlineData("rope_theta", "\"Infinity\"", "rope_theta")]
    [InlineData("rms_norm_eps", "1e999", "rms_norm_eps")]
    [InlineData("attention_dropout", "1.5", "attention_dropout")]
    [InlineData("attention_dropout", "-0.1", "attention_dropout")]
    [InlineData("vocab_size", "-1", "vocab_size")]
    [InlineData("vocab_size", "\"32\"", "vocab_size")]
    [InlineData("head_dim", "2147483647", "head_dim")]
    [InlineData("num_attention_heads", "1000000", "num_attention_heads")]
    [InlineData("eos_token_id", "[5, 99]", "eos_token_id")]
    [InlineData("eos_token_id", "-4", "eos_token_id")]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act")]
    public void Bad_config_values_give_ModelConfigException_naming_the_file_and_key(string key, string json, string named)
    {
        var dir = TinyFolder();
        var path = Path.Combine(dir, "config.json");
        EditConfig(dir, c => c[key] = JsonNode.Parse(json));
        var act = () => CausalLanguageModel.FromPretrained(dir, CPU).Dispose();
        var e = act.Should().Throw<ModelConfigException>().Which;
        e.Message.Should().Contain(path).And.Contain(named);
        e.FilePath.Should().Be(path);
    }

    [Fact]
    public void Heads_times_head_dim_overflow_is_refused_for_configs_built_in_code_too()
    {
        var config = TinyModelFactory.LlamaConfig() with { NumAttentionHeads = 1024, NumKeyValueHeads = 1024, HeadDimOverride = 4096, HiddenSize = 65_536 };
        var act = () => CausalLanguageModel.Create(config, CPU).Dispose();
        act.Should().Throw<ArgumentException>().WithMessage("*matrix*");
    }

    [Fact]
    public void FromPretrained_returns_the_model_in_eval_mode_so_dropout_never_makes_two_runs_differ()
    {
        var dir = TinyFolder();
        EditConfig(dir, c => c["attention_dropout"] = 0.9);
        using var model = CausalLanguageModel.FromPretrained(dir, CPU);
        using var ids = tensor(new long[] { 1, 2, 3, 4, 5, 6 }, dtype: ScalarType.Int64).reshape(1, 6);
        using var a = model.Forward(ids);
        using var b = model.Forward(ids);
        a.allclose(b, 0, 0).Should().BeTrue("with attention_dropout 0.9, train mode would make the two passes differ");
    }

    [Fact]
    public void Safetensors_with_non_number_offsets_or_a_fifo_fail_typed()
    {
        var dir = _root.CreateSubdirectory("st").FullName;
        var header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}";
        var bytes = BitConverter.GetBytes((ulong)header.Length).Concat(System.Text.Encoding.UTF8.GetBytes(header)).Concat(new byte[4]).ToArray();
        File.WriteAllBytes(Path.Combine(dir, "a.safetensors"), bytes);
        ((Action)(() => SafetensorsFile.Open(Path.Combine(dir, "a.safetensors")).Dispose())).Should().Throw<SafetensorsFormatException>().WithMessage("*data_offsets*");

        if (!OperatingSystem.IsLinux()) return;
        var fifo = Path.Combine(dir, "model.safetensors");
        using (var p = Process.Start("mkfifo", fifo)) p.WaitForExit();
        var sw = Stopwatch.StartNew();
        ((Action)(() => SafetensorsFile.Open(fifo).Dispose())).Should().Throw<SafetensorsFormatException>().WithMessage("*not a regular file*");
        sw.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_lone_surrogate_or_invalid_utf8_in_a_safetensors_header_is_a_format_error()
    {
        var dir = _root.CreateSubdirectory("st2").FullName;
        var header = "{\"__metadata__\":{\"k\":\"\\ud800\"}}";
        var bytes = BitConverter.GetBytes((ulong)header.Length).Concat(System.Text.Encoding.UTF8.GetBytes(header)).ToArray();
        File.WriteAllBytes(Path.Combine(dir, "a.safetensors"), bytes);
        ((Action)(() => SafetensorsFile.Open(Path.Combine(dir, "a.safetensors")).Dispose())).Should().Throw<SafetensorsFormatException>().WithMessage("*surrogate*");
    }

    [Fact]
    public void Property_mutated_config_json_either_loads_or_fails_with_a_CheckpointFormatException()
    {
        var dir = TinyFolder();
        var seed = File.ReadAllText(Path.Combine(dir, "config.json"));
        using var checkpoint = SafetensorsCheckpoint.Open(dir);
        var path = Path.Combine(dir, "config.json");
        Gen.Int.Sample(n =>
        {
            var r = new Random(n);
            if (n % 2 == 0) File.WriteAllText(path, Hostile.MutateJson(seed, r));
            else File.WriteAllBytes(path, Hostile.MutateBytes(System.Text.Encoding.UTF8.GetBytes(seed), r));
            Hostile.OnlyTyped<CheckpointFormatException>(() =>
            {
                var config = HfConfigFiles.ReadModelConfig(path);
                ModelLoadPreflight.Check(path, config, checkpoint);
            }, $"config seed {n}");
        }, iter: 1500, threads: 1);
    }

    // ---- training checkpoints ----

    private static TrainingData Data(int seed)
    {
        var records = JsonlDatasetReader.ReadFile(Path.Combine(SftReferenceTests.Dir, "data.jsonl"));
        return new TrainingData([new DataSource("train", records.ToArray(), new SftExampleBuilder(), 1)], seed);
    }

    private (string Checkpoint, TrainerOptions Options) SavedCheckpoint()
    {
        var options = new TrainerOptions
        {
            MaxSteps = 2, MicroBatchSize = 2, LearningRate = 1e-2, Seed = 3,
            CheckpointDirectory = Path.Combine(_root.FullName, "ck-" + Guid.NewGuid().ToString("N")), CheckpointEvery = 0,
        };
        using (var m = TinyLm.FromFixture(SftReferenceTests.Dir))
        using (var t = new Trainer(m, new SftObjective(), options))
            t.Train(Data(1));
        return (TrainingCheckpoints.FindLatest(options.CheckpointDirectory!)!, options);
    }

    private static void EditState(string checkpoint, Action<JsonObject> edit)
    {
        var path = Path.Combine(checkpoint, "trainer_state.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    public static TheoryData<string> BadStates => new()
    {
        "rng_short", "rng_base64", "null_sources", "null_source", "negative_step", "bad_cursor", "missing_optimizer_tensor",
    };

    [Theory]
    [MemberData(nameof(BadStates))]
    public void A_corrupt_checkpoint_fails_typed_and_leaves_the_model_untouched(string corruption)
    {
        torch.set_num_threads(1);
        var (checkpoint, options) = SavedCheckpoint();
        switch (corruption)
        {
            case "rng_short": EditState(checkpoint, s => s["torch_rng_state"] = Convert.ToBase64String(new byte[17])); break;
            case "rng_base64": EditState(checkpoint, s => s["torch_rng_state"] = "not base64!"); break;
            case "null_sources": EditState(checkpoint, s => s["data_position"]!["sources"] = null); break;
            case "null_source": EditState(checkpoint, s => s["data_position"]!["sources"]![0] = null); break;
            case "negative_step": EditState(checkpoint, s => s["step"] = -5); break;
            case "bad_cursor": EditState(checkpoint, s => s["data_position"]!["sources"]![0]!["cursor"] = 99999); break;
            case "missing_optimizer_tensor":
            {
                var path = Path.Combine(checkpoint, "optimizer.safetensors");
                using var f = SafetensorsFile.Open(path);
                var keep = f.Tensors.Skip(1).Select(t => (t.Name, f.Load(t.Name))).ToList();
                f.Dispose();
                SafetensorsWriter.Save(path, keep);
                foreach (var (_, t) in keep) t.Dispose();
                break;
            }
        }
        using var m = TinyLm.FromFixture(SftReferenceTests.Dir);
        var before = m.NamedParameters().Select(p => p.Parameter.detach().clone()).ToList();
        using var trainer = new Trainer(m, new SftObjective(), options);
        var act = () => trainer.LoadCheckpoint(checkpoint, Data(1));
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain(checkpoint);
        foreach (var (p, b) in m.NamedParameters().Zip(before))
            p.Parameter.allclose(b, 0, 0).Should().BeTrue($"'{p.Name}' must not change when the load fails");
        foreach (var b in before) b.Dispose();
    }

    [Fact]
    public void A_checkpoint_folder_with_a_20_digit_number_is_ignored_not_a_crash()
    {
        var (checkpoint, _) = SavedCheckpoint();
        var parent = Path.GetDirectoryName(checkpoint)!;
        var huge = Directory.CreateDirectory(Path.Combine(parent, "checkpoint-99999999999999999999")).FullName;
        File.Copy(Path.Combine(checkpoint, "trainer_state.json"), Path.Combine(huge, "trainer_state.json"));
        TrainingCheckpoints.FindLatest(parent).Should().Be(checkpoint);
    }
}
