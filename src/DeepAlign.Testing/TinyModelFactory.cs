using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Configuration;
using static TorchSharp.torch;

namespace DeepAlign.Testing;

/// <summary>
/// Builds small Llama and Qwen2 models with random weights from a seed and saves them as real Hugging Face folders
/// (<c>config.json</c>, <c>generation_config.json</c>, <c>model.safetensors</c> or shards), so tests can exercise the
/// same loading paths as real checkpoints. The same seed gives bit-identical weights on every run.
/// </summary>
public static class TinyModelFactory
{
    /// <summary>A small Llama configuration (grouped-query attention by default).</summary>
    /// <param name="vocabSize">Vocabulary size.</param>
    /// <param name="hiddenSize">Model width.</param>
    /// <param name="layers">Decoder layers.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key/value heads (must divide <paramref name="heads"/>).</param>
    /// <param name="intermediateSize">MLP width.</param>
    /// <param name="tieWordEmbeddings">Share the embedding matrix with the output head.</param>
    /// <param name="initializerRange">Standard deviation of the random weights (transformers uses 0.02; larger gives more peaked distributions).</param>
    /// <param name="maxPositionEmbeddings">Longest sequence.</param>
    public static CausalLMConfig LlamaConfig(int vocabSize = 128, int hiddenSize = 64, int layers = 2, int heads = 4, int kvHeads = 2,
        int intermediateSize = 128, bool tieWordEmbeddings = false, double initializerRange = 0.02, int maxPositionEmbeddings = 512) => new()
    {
        ModelType = "llama",
        Architectures = new[] { "LlamaForCausalLM" },
        VocabSize = vocabSize,
        HiddenSize = hiddenSize,
        IntermediateSize = intermediateSize,
        NumHiddenLayers = layers,
        NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads,
        MaxPositionEmbeddings = maxPositionEmbeddings,
        RmsNormEps = 1e-5,
        RopeTheta = 10000.0,
        TieWordEmbeddings = tieWordEmbeddings,
        InitializerRange = initializerRange,
        BosTokenId = 1,
        EosTokenIds = new[] { 2 },
        TorchDtype = "float32",
    };

    /// <summary>A small Qwen2 configuration (q/k/v biases, tied head by default).</summary>
    /// <param name="vocabSize">Vocabulary size.</param>
    /// <param name="hiddenSize">Model width.</param>
    /// <param name="layers">Decoder layers.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key/value heads (must divide <paramref name="heads"/>).</param>
    /// <param name="intermediateSize">MLP width.</param>
    /// <param name="tieWordEmbeddings">Share the embedding matrix with the output head.</param>
    /// <param name="initializerRange">Standard deviation of the random weights.</param>
    /// <param name="maxPositionEmbeddings">Longest sequence.</param>
    public static CausalLMConfig Qwen2Config(int vocabSize = 128, int hiddenSize = 64, int layers = 2, int heads = 4, int kvHeads = 2,
        int intermediateSize = 128, bool tieWordEmbeddings = true, double initializerRange = 0.02, int maxPositionEmbeddings = 512) =>
        LlamaConfig(vocabSize, hiddenSize, layers, heads, kvHeads, intermediateSize, tieWordEmbeddings, initializerRange, maxPositionEmbeddings) with
        {
            ModelType = "qwen2",
            Architectures = new[] { "Qwen2ForCausalLM" },
            RopeTheta = 1000000.0,
            RmsNormEps = 1e-6,
        };

    /// <summary>Builds a model in memory with seeded random weights (see <see cref="CausalLanguageModel.Create"/>).</summary>
    /// <param name="config">Architecture (e.g. from <see cref="LlamaConfig"/>).</param>
    /// <param name="seed">Random seed.</param>
    /// <param name="device">Device; default CPU.</param>
    /// <param name="dtype">Weight dtype; default float32.</param>
    public static DecoderOnlyCausalLM Create(CausalLMConfig config, long seed, Device? device = null, ScalarType? dtype = null) =>
        CausalLanguageModel.Create(config, device ?? CPU, dtype ?? ScalarType.Float32, seed);

    /// <summary>
    /// Writes a Hugging Face model folder with seeded random weights and returns its path. Load it back with
    /// <see cref="CausalLanguageModel.FromPretrained"/>.
    /// </summary>
    /// <param name="directory">Destination folder (created if needed; existing weight files are replaced).</param>
    /// <param name="config">Architecture (e.g. from <see cref="LlamaConfig"/> or <see cref="Qwen2Config"/>).</param>
    /// <param name="seed">Random seed.</param>
    /// <param name="dtype">Stored weight dtype (float32, bfloat16 or float16); default float32.</param>
    /// <param name="maxShardBytes">When set, weights are split into shards of at most this size plus an index.</param>
    /// <param name="generationConfig">Decoding defaults; by default bos/eos from the config and greedy decoding.</param>
    public static string SaveFolder(string directory, CausalLMConfig config, long seed, ScalarType? dtype = null,
        long? maxShardBytes = null, GenerationConfig? generationConfig = null)
    {
        using var model = Create(config, seed, CPU, dtype);
        model.GenerationConfig = generationConfig ?? new GenerationConfig
        {
            BosTokenId = config.BosTokenId,
            EosTokenIds = config.EosTokenIds,
            PadTokenId = config.PadTokenId,
            DoSample = false,
        };
        model.SavePretrained(directory, maxShardBytes);
        return directory;
    }
}
