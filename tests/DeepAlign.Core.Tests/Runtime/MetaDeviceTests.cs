using DeepAlign.Configuration;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Testing;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Runtime;

public sealed class MetaDeviceTests
{
    private static readonly Device Meta = new(DeviceType.META);

    private static CausalLMConfig Config(string family) => family switch
    {
        "llama" => TinyModelFactory.LlamaConfig(vocabSize: 96, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64),
        "qwen2" => TinyModelFactory.Qwen2Config(vocabSize: 96, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64),
        _ => throw new ArgumentException(family),
    };

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    public void Forward(string family)
    {
        using var model = TinyModelFactory.Create(Config(family), seed: 1, device: Meta);
        using var scope = NewDisposeScope();
        var ids = zeros(new long[] { 2, 5 }, ScalarType.Int64, Meta);
        var logits = model.Forward(ids);
        logits.device_type.Should().Be(DeviceType.META);
        logits.shape.Should().Equal(2, 5, 96);
        var mask = ones(new long[] { 2, 5 }, ScalarType.Int64, Meta);
        model.Forward(ids, mask).shape.Should().Equal(2, 5, 96);
        using var cache = model.CreateCache(2, 8);
        model.Forward(ids, mask, cache, lastPositionOnly: true).shape.Should().Equal(2, 1, 96);
        var next = zeros(new long[] { 2, 1 }, ScalarType.Int64, Meta);
        var mask6 = ones(new long[] { 2, 6 }, ScalarType.Int64, Meta);
        model.Forward(next, mask6, cache).shape.Should().Equal(2, 1, 96);
        cache.Length.Should().Be(6);
    }
}
