using DeepAlign.Checkpoints;
using DeepAlign.Models;
using FluentAssertions;
using Xunit;
using DeepAlign.Configuration;

namespace DeepAlign.Tests.Checkpoints;

public class HfConfigFilesTests
{
    [Fact]
    public void Reads_a_llama31_config_with_eos_list_rope_scaling_and_unknown_keys()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), """
        {
          "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
          "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
          "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
          "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
          "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16", "tie_word_embeddings": false,
          "pretraining_tp": 1
        }
        """);
        var c = HfConfigFiles.ReadModelConfig(dir.Path);
        c.KeyValueHeads.Should().Be(8);
        c.HeadDim.Should().Be(128);
        c.RopeScaling!.EffectiveType.Should().Be("llama3");
        c.RopeScaling.Factor.Should().Be(8.0);
        c.EosTokenIds.Should().Equal(128001, 128008, 128009);
        c.ExtensionData.Should().ContainKey("pretraining_tp");

        HfConfigFiles.WriteModelConfig(dir.File("copy.json"), c);
        var back = HfConfigFiles.ReadModelConfig(dir.File("copy.json"));
        back.EosTokenIds.Should().Equal(128001, 128008, 128009);
        back.RopeScaling!.OriginalMaxPositionEmbeddings.Should().Be(8192);
        back.ExtensionData!["pretraining_tp"].GetInt32().Should().Be(1);
        File.ReadAllText(dir.File("copy.json")).Should().NotContain("\"head_dim\"");
    }

    [Fact]
    public void Generation_config_round_trips_single_eos_and_keeps_unknown_keys()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("generation_config.json"),
            "{\"bos_token_id\": 1, \"eos_token_id\": 2, \"do_sample\": true, \"temperature\": 0.6, \"top_p\": 0.9, \"transformers_version\": \"4.45.0\"}");
        var g = HfConfigFiles.ReadGenerationConfig(dir.Path);
        g.EosTokenIds.Should().Equal(2);
        g.DoSample.Should().BeTrue();
        g.TopK.Should().BeNull();
        HfConfigFiles.WriteGenerationConfig(dir.File("g2.json"), g with { TopK = 50, EosTokenIds = new[] { 2, 3 } });
        var text = File.ReadAllText(dir.File("g2.json"));
        text.Should().Contain("\"transformers_version\"").And.Contain("\"top_k\": 50").And.NotContain("max_new_tokens");
        HfConfigFiles.ReadGenerationConfig(dir.File("g2.json")).EosTokenIds.Should().Equal(2, 3);
        HfConfigFiles.TryReadGenerationConfig(Path.Combine(dir.Path, "nothing-here")).Should().BeNull();
    }

    [Fact]
    public void Bad_json_names_file_and_path()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": \"big\"}");
        var act = () => HfConfigFiles.ReadModelConfig(dir.Path);
        act.Should().Throw<CheckpointFormatException>().WithMessage($"*config.json*hidden_size*");
        var missing = () => HfConfigFiles.ReadModelConfig(dir.File("none.json"));
        missing.Should().Throw<FileNotFoundException>();
    }
}
