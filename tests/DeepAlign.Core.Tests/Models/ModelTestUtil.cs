using DeepAlign.Checkpoints;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Models;

internal static class ModelTestUtil
{
    public static string FixtureDir(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", name);

    public static string ExpectedFile(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", name + ".expected.safetensors");

    public static float MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a.to_type(ScalarType.Float32) - b.to_type(ScalarType.Float32)).abs().max();
        return d.item<float>();
    }

    public static DeepAlign.Configuration.CausalLMConfig TinyConfig(string modelType = "llama", int kvHeads = 2, bool tied = false) => new()
    {
        ModelType = modelType,
        VocabSize = 97,
        HiddenSize = 32,
        IntermediateSize = 48,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = kvHeads,
        TieWordEmbeddings = tied,
        RmsNormEps = 1e-5,
        InitializerRange = 0.2,
        BosTokenId = 1,
        EosTokenIds = new[] { 2 },
    };

    public static Tensor Ids(params long[][] rows)
    {
        int len = rows[0].Length;
        var flat = rows.SelectMany(r => r).ToArray();
        return tensor(flat, dtype: ScalarType.Int64).reshape(rows.Length, len);
    }
}
