namespace DeepAlign.Training;

/// <summary>
/// Settings of <see cref="Trainer"/>. Defaults follow common practice for fine-tuning (Hugging Face Trainer,
/// Qi et al. 2024); each says where it comes from.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Number of optimiser steps. Default 100.</summary>
    public int MaxSteps { get; init; } = 100;

    /// <summary>Sequences per forward/backward pass. Default 8.</summary>
    public int MicroBatchSize { get; init; } = 8;

    /// <summary>Micro-batches per optimiser step; the effective batch is <see cref="MicroBatchSize"/> x this. Default 1.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Peak learning rate. Default 2e-5 (Qi et al.'s 7B setting for full fine-tuning; LoRA usually wants ~1e-4).</summary>
    public double LearningRate { get; init; } = 2e-5;

    /// <summary>
    /// Decoupled AdamW weight decay, applied to matrices only (never to biases or norm weights, nor to any 1-D
    /// parameter). Default 0.0, as in the Hugging Face Trainer and Qi et al.; set it explicitly if you want decay
    /// (0.01 and 0.1 are common).
    /// </summary>
    public double WeightDecay { get; init; }

    /// <summary>AdamW beta1. Default 0.9 (PyTorch); Qi et al. use 0.5 for their token-wise constrained objective.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW beta2. Default 0.999 (PyTorch).</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>AdamW epsilon. Default 1e-8 (PyTorch).</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Linear warmup steps: step s (0-based) uses (s + 1) / warmup x peak while s &lt; warmup. Default 0.</summary>
    public int WarmupSteps { get; init; }

    /// <summary>Decay after warmup. Default <see cref="LearningRateScheduleKind.Cosine"/>.</summary>
    public LearningRateScheduleKind Schedule { get; init; } = LearningRateScheduleKind.Cosine;

    /// <summary>Floor of the decay as a fraction of the peak. Default 0.</summary>
    public double MinLearningRateRatio { get; init; }

    /// <summary>Global L2 norm the gradients are clipped to (PyTorch <c>clip_grad_norm_</c> semantics); null disables. Default 1.0.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    /// <summary>Seed of data order, random example builders, dropout and <see cref="ObjectiveContext.Random"/>. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>Sequences longer than this are cut on the right; null keeps them whole. Default null.</summary>
    public int? MaxSequenceLength { get; init; }

    /// <summary>Id written into padding; null uses the config's pad id, else its first eos id, else 0.</summary>
    public long? PadTokenId { get; init; }

    /// <summary>Run the evaluation callback every this many steps (and after the last); 0 disables. Default 0.</summary>
    public int EvaluateEvery { get; init; }

    /// <summary>Log (ILogger, information level) every this many steps. Default 10.</summary>
    public int LogEvery { get; init; } = 10;

    /// <summary>Folder for checkpoints (<c>checkpoint-000100/</c> ...); null disables checkpointing. Default null.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Write a checkpoint every this many steps (and always after the last step and on cancellation); 0 = only those. Default 0.</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>How many checkpoints to keep (older ones are deleted after a new one is complete). Default 2.</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>Resume from the newest complete checkpoint in <see cref="CheckpointDirectory"/> when there is one. Default true.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        static void Fail(string field, object? value, string rule) => throw new ArgumentException($"TrainerOptions.{field} = {value}: {rule}.", field);
        if (MaxSteps <= 0) Fail(nameof(MaxSteps), MaxSteps, "must be positive");
        if (MicroBatchSize <= 0) Fail(nameof(MicroBatchSize), MicroBatchSize, "must be positive");
        if (GradientAccumulationSteps <= 0) Fail(nameof(GradientAccumulationSteps), GradientAccumulationSteps, "must be positive");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) Fail(nameof(LearningRate), LearningRate, "must be a positive finite number");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) Fail(nameof(WeightDecay), WeightDecay, "must be a non-negative finite number");
        if (!(Beta1 >= 0 && Beta1 < 1)) Fail(nameof(Beta1), Beta1, "must be in [0, 1)");
        if (!(Beta2 >= 0 && Beta2 < 1)) Fail(nameof(Beta2), Beta2, "must be in [0, 1)");
        if (!(Epsilon > 0)) Fail(nameof(Epsilon), Epsilon, "must be positive");
        if (WarmupSteps < 0) Fail(nameof(WarmupSteps), WarmupSteps, "must be non-negative");
        if (!(MinLearningRateRatio >= 0 && MinLearningRateRatio <= 1)) Fail(nameof(MinLearningRateRatio), MinLearningRateRatio, "must be in [0, 1]");
        if (MaxGradNorm is double g && !(g > 0)) Fail(nameof(MaxGradNorm), g, "must be positive (or null to disable clipping)");
        if (MaxSequenceLength is int m && m < 2) Fail(nameof(MaxSequenceLength), m, "must be at least 2");
        if (PadTokenId is < 0) Fail(nameof(PadTokenId), PadTokenId, "must be non-negative");
        if (EvaluateEvery < 0) Fail(nameof(EvaluateEvery), EvaluateEvery, "must be non-negative");
        if (LogEvery <= 0) Fail(nameof(LogEvery), LogEvery, "must be positive");
        if (CheckpointEvery < 0) Fail(nameof(CheckpointEvery), CheckpointEvery, "must be non-negative");
        if (KeepCheckpoints <= 0) Fail(nameof(KeepCheckpoints), KeepCheckpoints, "must be positive");
        if (CheckpointEvery > 0 && CheckpointDirectory is null) Fail(nameof(CheckpointDirectory), "null", "is required when CheckpointEvery > 0");
    }
}
