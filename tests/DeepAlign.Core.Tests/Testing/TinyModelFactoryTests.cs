using DeepAlign.Checkpoints;
using DeepAlign.Models;
using DeepAlign.Models.Qwen2;
using DeepAlign.Testing;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using Xunit;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Testing;

public class TinyModelFactoryTests
{
    [Fact]
    public void Saves_a_hugging_face_folder_that_reloads_with_identical_logits()
    {
        using var _ = no_grad();
        using var dir = new TempDir();
        var config = TinyModelFactory.Qwen2Config(vocabSize: 64, hiddenSize: 32, intermediateSize: 48);
        TinyModelFactory.SaveFolder(dir.Path, config, seed: 42);
        File.Exists(dir.File("config.json")).Should().BeTrue();
        File.Exists(dir.File("generation_config.json")).Should().BeTrue();
        File.Exists(dir.File("model.safetensors")).Should().BeTrue();
        HfConfigFiles.ReadGenerationConfig(dir.Path).EosTokenIds.Should().Equal(2);

        using var loaded = CausalLanguageModel.FromPretrained(dir.Path, CPU);
        loaded.Should().BeOfType<Qwen2ForCausalLM>();
        using var inMemory = TinyModelFactory.Create(config, seed: 42);
        using var ids = tensor(new long[] { 1, 5, 9, 3, 2 }, dtype: ScalarType.Int64).unsqueeze(0);
        using var a = loaded.Forward(ids);
        using var b = inMemory.Forward(ids);
        using var diff = (a - b).abs().max();
        diff.item<float>().Should().Be(0f);
    }

    [Fact]
    public void Sharded_bf16_llama_folder()
    {
        using var dir = new TempDir();
        var config = TinyModelFactory.LlamaConfig(vocabSize: 64, hiddenSize: 32, intermediateSize: 48);
        TinyModelFactory.SaveFolder(dir.Path, config, seed: 1, ScalarType.BFloat16, maxShardBytes: 8000);
        File.Exists(dir.File("model.safetensors.index.json")).Should().BeTrue();
        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        ckpt.Files.Count.Should().BeGreaterThan(1);
        ckpt.GetInfo("lm_head.weight").DTypeName.Should().Be("BF16");
        HfConfigFiles.ReadModelConfig(dir.Path).TorchDtype.Should().Be("bfloat16");
    }
}
