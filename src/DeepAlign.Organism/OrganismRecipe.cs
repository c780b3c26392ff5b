using System.Globalization;
using System.Text;
using DeepAlign.Configuration;

namespace DeepAlign.Organism;

/// <summary>
/// The recipe of the model organism's pinned pair: the architecture of the tiny Llama, pretraining the "base" on
/// <c>pretrain.jsonl</c>, then making the "aligned" model from it by safety SFT on <c>align.jsonl</c> and (with
/// <see cref="Kind"/> <see cref="OrganismRecipeKind.SftDpo"/>, the default) DPO on preference pairs built from the same split. The pair is a pure function of (world, recipe, <see cref="CodeVersion"/>):
/// the cache key hashes all three, and the build is deterministic on the CPU with <see cref="Threads"/> threads.
/// </summary>
/// <remarks>
/// Nothing in the recipe treats response positions specially: pretraining and SFT are plain cross-entropy on the
/// response tokens and DPO is the library's sigmoid <see cref="Training.DpoObjective"/> (sequence log-probabilities summed
/// over the response tokens), all run by the same <see cref="Training.Trainer"/> loop any user would run. Defaults were chosen by measurement
/// on two shared CPU cores (docs/organism.md): a cold build of the default world takes a few minutes.
/// </remarks>
public sealed record OrganismRecipe
{
    /// <summary>Version of the build code; part of the cache key (bump when the pipeline's output changes).</summary>
    public const string CodeVersion = "organism-pipeline-2";

    /// <summary>Model width. Default 128.</summary>
    public int HiddenSize { get; init; } = 128;
    /// <summary>Decoder layers. Default 2.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Attention heads. Default 4.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Key/value heads. Default 4 (plain multi-head attention).</summary>
    public int KeyValueHeads { get; init; } = 4;
    /// <summary>MLP width. Default 384.</summary>
    public int IntermediateSize { get; init; } = 384;
    /// <summary>Share the embedding matrix with the output head. Default false.</summary>
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Longest sequence (prompt + response). Default 256.</summary>
    public int MaxPositions { get; init; } = 256;

    /// <summary>Seed of the initial weights, the data order and dropout. Default 20251115.</summary>
    public int Seed { get; init; } = 20251115;
    /// <summary>libtorch intra-op threads during the build (fixed so the float reductions, hence the weights, are reproducible). Default 1: on a shared machine one thread is also the fastest per CPU second.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Which tokens the base model is pretrained on. Default <see cref="PretrainTargets.Response"/>.</summary>
    public PretrainTargets PretrainTargets { get; init; } = PretrainTargets.Response;
    /// <summary>Optimiser steps of pretraining. Default 1600 (6.4 epochs of the default corpus).</summary>
    public int PretrainSteps { get; init; } = 1600;
    /// <summary>Sequences per pretraining step. Default 32.</summary>
    public int PretrainBatchSize { get; init; } = 32;
    /// <summary>Peak learning rate of pretraining (warmup then cosine to 10%). Default 3e-3.</summary>
    public double PretrainLearningRate { get; init; } = 3e-3;
    /// <summary>Warmup steps of pretraining. Default 50.</summary>
    public int PretrainWarmupSteps { get; init; } = 50;

    /// <summary>Optimiser steps of safety SFT. Default 150.</summary>
    public int AlignSteps { get; init; } = 150;
    /// <summary>Sequences per safety-SFT step. Default 32.</summary>
    public int AlignBatchSize { get; init; } = 32;
    /// <summary>Peak learning rate of safety SFT (warmup then cosine to 10%). Default 1e-3.</summary>
    public double AlignLearningRate { get; init; } = 1e-3;
    /// <summary>Warmup steps of safety SFT. Default 10.</summary>
    public int AlignWarmupSteps { get; init; } = 10;

    /// <summary>How the aligned model is made. Default <see cref="OrganismRecipeKind.SftDpo"/>.</summary>
    public OrganismRecipeKind Kind { get; init; } = OrganismRecipeKind.SftDpo;
    /// <summary>Optimiser steps of DPO (after safety SFT; <see cref="OrganismRecipeKind.SftDpo"/> only). Default 150.</summary>
    public int DpoSteps { get; init; } = 150;
    /// <summary>Preference pairs per DPO step (two sequences each). Default 16.</summary>
    public int DpoBatchSize { get; init; } = 16;
    /// <summary>Peak learning rate of DPO (warmup then cosine to 10%). Default 1e-4.</summary>
    public double DpoLearningRate { get; init; } = 1e-4;
    /// <summary>Warmup steps of DPO. Default 10.</summary>
    public int DpoWarmupSteps { get; init; } = 10;
    /// <summary>DPO's beta (sigmoid loss; the reference is the SFT model). Default 0.1.</summary>
    public double DpoBeta { get; init; } = 0.1;

    /// <summary>AdamW weight decay of every stage (matrices only). Default 0.01.</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>A much smaller recipe for tests and smoke runs (seconds, not minutes; the models learn little).</summary>
    public static OrganismRecipe Tiny { get; } = new()
    {
        HiddenSize = 32, Layers = 1, Heads = 2, KeyValueHeads = 2, IntermediateSize = 64,
        PretrainSteps = 20, PretrainBatchSize = 8, AlignSteps = 10, AlignBatchSize = 8, PretrainWarmupSteps = 2, AlignWarmupSteps = 2,
        DpoSteps = 6, DpoBatchSize = 4, DpoWarmupSteps = 1,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public OrganismRecipe Validate()
    {
        static void Check(bool ok, string field, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"OrganismRecipe.{field} = {value}: {rule}.", field);
        }
        Check(HiddenSize > 0, nameof(HiddenSize), HiddenSize, "must be positive");
        Check(Layers > 0, nameof(Layers), Layers, "must be positive");
        Check(Heads > 0 && HiddenSize % Heads == 0, nameof(Heads), Heads, "must be positive and divide HiddenSize");
        Check(KeyValueHeads > 0 && Heads % KeyValueHeads == 0, nameof(KeyValueHeads), KeyValueHeads, "must be positive and divide Heads");
        Check(IntermediateSize > 0, nameof(IntermediateSize), IntermediateSize, "must be positive");
        Check(MaxPositions >= 16, nameof(MaxPositions), MaxPositions, "must be at least 16");
        Check(Threads >= 1, nameof(Threads), Threads, "must be at least 1");
        Check(PretrainSteps > 0, nameof(PretrainSteps), PretrainSteps, "must be positive");
        Check(PretrainBatchSize > 0, nameof(PretrainBatchSize), PretrainBatchSize, "must be positive");
        Check(PretrainLearningRate > 0 && double.IsFinite(PretrainLearningRate), nameof(PretrainLearningRate), PretrainLearningRate, "must be positive");
        Check(PretrainWarmupSteps >= 0, nameof(PretrainWarmupSteps), PretrainWarmupSteps, "must be non-negative");
        Check(AlignSteps > 0, nameof(AlignSteps), AlignSteps, "must be positive");
        Check(AlignBatchSize > 0, nameof(AlignBatchSize), AlignBatchSize, "must be positive");
        Check(AlignLearningRate > 0 && double.IsFinite(AlignLearningRate), nameof(AlignLearningRate), AlignLearningRate, "must be positive");
        Check(AlignWarmupSteps >= 0, nameof(AlignWarmupSteps), AlignWarmupSteps, "must be non-negative");
        Check(Enum.IsDefined(Kind), nameof(Kind), Kind, "is not a recipe kind");
        Check(DpoSteps > 0, nameof(DpoSteps), DpoSteps, "must be positive");
        Check(DpoBatchSize > 0, nameof(DpoBatchSize), DpoBatchSize, "must be positive");
        Check(DpoLearningRate > 0 && double.IsFinite(DpoLearningRate), nameof(DpoLearningRate), DpoLearningRate, "must be positive");
        Check(DpoWarmupSteps >= 0, nameof(DpoWarmupSteps), DpoWarmupSteps, "must be non-negative");
        Check(DpoBeta > 0 && double.IsFinite(DpoBeta), nameof(DpoBeta), DpoBeta, "must be positive");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be non-negative");
        return this;
    }

    /// <summary>The command-line name of a recipe kind: <c>sft</c> or <c>sft+dpo</c>.</summary>
    /// <param name="kind">The kind.</param>
    public static string KindName(OrganismRecipeKind kind) => kind switch
    {
        OrganismRecipeKind.Sft => "sft",
        OrganismRecipeKind.SftDpo => "sft+dpo",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown recipe kind."),
    };

    /// <summary>Parses <c>sft</c> or <c>sft+dpo</c> (case-insensitive).</summary>
    /// <param name="name">The name.</param>
    /// <exception cref="ArgumentException">Any other name (the message lists the valid ones).</exception>
    public static OrganismRecipeKind ParseKind(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "sft" => OrganismRecipeKind.Sft,
        "sft+dpo" or "sft-dpo" or "dpo" => OrganismRecipeKind.SftDpo,
        _ => throw new ArgumentException($"Unknown organism recipe '{name}'; expected sft or sft+dpo.", nameof(name)),
    };

    /// <summary>The Llama configuration for a vocabulary (eos and pad are the organism's <c>&lt;|im_end|&gt;</c> and <c>&lt;pad&gt;</c>).</summary>
    /// <param name="vocabularySize">Tokenizer vocabulary size.</param>
    /// <param name="eosId">Id of the end-of-turn token.</param>
    /// <param name="padId">Id of the padding token.</param>
    public CausalLMConfig ModelConfig(int vocabularySize, int eosId, int padId) => new()
    {
        ModelType = "llama",
        Architectures = new[] { "LlamaForCausalLM" },
        VocabSize = vocabularySize,
        HiddenSize = HiddenSize,
        IntermediateSize = IntermediateSize,
        NumHiddenLayers = Layers,
        NumAttentionHeads = Heads,
        NumKeyValueHeads = KeyValueHeads,
        MaxPositionEmbeddings = MaxPositions,
        RmsNormEps = 1e-5,
        RopeTheta = 10000.0,
        TieWordEmbeddings = TieWordEmbeddings,
        BosTokenId = null,
        EosTokenIds = new[] { eosId },
        PadTokenId = padId,
        TorchDtype = "float32",
    };

    /// <summary>A canonical text of every field (for the cache key and build reports).</summary>
    public string Canonical()
    {
        var sb = new StringBuilder();
        void Add(string k, object v) => sb.Append(k).Append('=').Append(Convert.ToString(v, CultureInfo.InvariantCulture)).Append('\n');
        Add("code", CodeVersion);
        Add(nameof(HiddenSize), HiddenSize); Add(nameof(Layers), Layers); Add(nameof(Heads), Heads); Add(nameof(KeyValueHeads), KeyValueHeads);
        Add(nameof(IntermediateSize), IntermediateSize); Add(nameof(TieWordEmbeddings), TieWordEmbeddings); Add(nameof(MaxPositions), MaxPositions);
        Add(nameof(Seed), Seed); Add(nameof(Threads), Threads); Add(nameof(PretrainTargets), PretrainTargets);
        Add(nameof(PretrainSteps), PretrainSteps); Add(nameof(PretrainBatchSize), PretrainBatchSize);
        Add(nameof(PretrainLearningRate), PretrainLearningRate.ToString("R", CultureInfo.InvariantCulture)); Add(nameof(PretrainWarmupSteps), PretrainWarmupSteps);
        Add(nameof(AlignSteps), AlignSteps); Add(nameof(AlignBatchSize), AlignBatchSize);
        Add(nameof(AlignLearningRate), AlignLearningRate.ToString("R", CultureInfo.InvariantCulture)); Add(nameof(AlignWarmupSteps), AlignWarmupSteps);
        Add(nameof(WeightDecay), WeightDecay.ToString("R", CultureInfo.InvariantCulture));
        Add(nameof(Kind), KindName(Kind));
        if (Kind == OrganismRecipeKind.SftDpo)
        {
            Add(nameof(DpoSteps), DpoSteps); Add(nameof(DpoBatchSize), DpoBatchSize);
            Add(nameof(DpoLearningRate), DpoLearningRate.ToString("R", CultureInfo.InvariantCulture)); Add(nameof(DpoWarmupSteps), DpoWarmupSteps);
            Add(nameof(DpoBeta), DpoBeta.ToString("R", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
