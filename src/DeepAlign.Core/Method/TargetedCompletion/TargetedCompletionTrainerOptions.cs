using DeepAlign.Models.Lora;
using DeepAlign.Text;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using DeepAlign.Data;
using DeepAlign.Method.Baselines;

namespace DeepAlign.Method.TargetedCompletion;

/// <summary>Settings of <see cref="TargetedCompletionTrainer"/>: which objective, its options, the loop and LoRA.</summary>
public sealed record TargetedCompletionTrainerOptions
{
    /// <summary>The objective. Default <see cref="AlignmentObjective.TargetedCompletion"/>.</summary>
    public AlignmentObjective Objective { get; init; } = AlignmentObjective.TargetedCompletion;

    /// <summary>
    /// Targeted-completion options; also the data settings every objective shares (p0, K_max, the harmful : benign
    /// mix, the vocabulary cut).
    /// </summary>
    public TargetedCompletionOptions Method { get; init; } = new();

    /// <summary>beta schedule of the constrained objective (Qi et al.'s by default).</summary>
    public ConstrainedBetaSchedule ConstrainedBetas { get; init; } = new();

    /// <summary>
    /// Whether harmful triples become safety-recovery contexts (random K_pre) or plain (x, r) pairs. Null (default):
    /// safety recovery for targeted completion and augmentation, plain pairs for constrained and sft.
    /// </summary>
    public bool? SafetyRecoveryContexts { get; init; }

    /// <summary>The training loop; null uses <see cref="DefaultTrainerOptions"/> for the objective.</summary>
    public TrainerOptions? Trainer { get; init; }

    /// <summary>LoRA adapters on the student (docs/method.md defaults: rank 16, alpha 32, dropout 0.05, q/k/v/o/gate/up/down); null (default): full fine-tuning.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>
    /// Loop defaults per objective: <see cref="TrainerOptions"/> defaults (lr 2e-5, cosine, AdamW beta1 0.9), except
    /// AdamW beta1 = 0.5 for the constrained objective (Qi et al.).
    /// </summary>
    /// <param name="objective">The objective.</param>
    public static TrainerOptions DefaultTrainerOptions(AlignmentObjective objective) =>
        objective == AlignmentObjective.Constrained ? new TrainerOptions { Beta1 = 0.5 } : new TrainerOptions();

    /// <summary>The objective these options select (a new instance).</summary>
    public ITrainingObjective CreateObjective()
    {
        Validate();
        int? vocab = Method.VocabularySize;
        return Objective switch
        {
            AlignmentObjective.TargetedCompletion => new TargetedCompletionObjective(Method),
            AlignmentObjective.Augmentation => new AugmentationObjective(vocab),
            AlignmentObjective.Constrained => new ConstrainedObjective(ConstrainedBetas, vocab),
            AlignmentObjective.Sft => new SftObjective(vocab),
            _ => throw new ArgumentOutOfRangeException(nameof(Objective), Objective, "Unknown objective."),
        };
    }

    /// <summary>The example builder of the harmful triples: safety-recovery contexts (random K_pre) or plain (x, r) pairs.</summary>
    /// <param name="encoder">Encoder for text records; null when every line is pre-tokenized.</param>
    public SafetyRecoveryExampleBuilder HarmfulBuilder(IConversationEncoder? encoder) =>
        new(encoder, EffectiveSafetyRecovery ? Method.NoPrefixProbability : 1.0, Method.MaxPrefixLength);

    /// <summary>
    /// The training stream: harmful triples (source <c>harmful</c>) and benign pairs (source <c>benign</c>) mixed
    /// <see cref="TargetedCompletionOptions.HarmfulShare"/> : <see cref="TargetedCompletionOptions.BenignShare"/>
    /// (1 : 4) in every run of draws, seeded by the loop's seed.
    /// </summary>
    /// <param name="harmful">Harmful triples (prompt, harmful_response, safe_response).</param>
    /// <param name="benign">Benign pairs (prompt, response).</param>
    /// <param name="encoder">Encoder for text records; null when pre-tokenized.</param>
    public TrainingData CreateData(IReadOnlyList<DatasetRecord> harmful, IReadOnlyList<DatasetRecord> benign, IConversationEncoder? encoder)
    {
        ArgumentNullException.ThrowIfNull(harmful);
        ArgumentNullException.ThrowIfNull(benign);
        Validate();
        return new TrainingData(new[]
        {
            new DataSource(TrainingSources.Harmful, harmful, HarmfulBuilder(encoder), Method.HarmfulShare),
            new DataSource(TrainingSources.Benign, benign, new SftExampleBuilder(encoder), Method.BenignShare),
        }, EffectiveTrainer.Seed);
    }

    /// <summary>
    /// <see cref="TargetedCompletionTrainer.TrainFromFolders"/> only: run the gradient signal probe on the aligned model over
    /// the first this-many harmful lines before training and weight the penalty with its norms (written to
    /// <c>OUTPUT/probe-norms.json</c>). Excludes <see cref="TargetedCompletionOptions.ProbeNorms"/>. Null: no probe.
    /// </summary>
    public int? ProbeSequences { get; init; }

    /// <summary>
    /// <see cref="TargetedCompletionTrainer.TrainFromFolders"/> only: when set, the number of optimiser steps is this many
    /// epochs over the harmful triples (benign pairs mixed in by the shares) and the loop's MaxSteps is ignored.
    /// </summary>
    public double? Epochs { get; init; }

    /// <summary>The effective loop settings.</summary>
    public TrainerOptions EffectiveTrainer => Trainer ?? DefaultTrainerOptions(Objective);

    /// <summary>The effective context choice.</summary>
    public bool EffectiveSafetyRecovery => SafetyRecoveryContexts ?? Objective is AlignmentObjective.TargetedCompletion or AlignmentObjective.Augmentation;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public TargetedCompletionTrainerOptions Validate()
    {
        if (!Enum.IsDefined(Objective)) throw new ArgumentException($"TargetedCompletionTrainerOptions.Objective has an unknown value {(int)Objective}.", nameof(Objective));
        if (Method is null) throw new ArgumentException("TargetedCompletionTrainerOptions.Method must be set.", nameof(Method));
        if (ConstrainedBetas is null) throw new ArgumentException("TargetedCompletionTrainerOptions.ConstrainedBetas must be set.", nameof(ConstrainedBetas));
        Method.Validate();
        ConstrainedBetas.Validate();
        EffectiveTrainer.Validate();
        Lora?.Validate();
        if (ProbeSequences is int n)
        {
            if (n < 1) throw new ArgumentException($"TargetedCompletionTrainerOptions.ProbeSequences must be at least 1 (got {n}).", nameof(ProbeSequences));
            if (Objective != AlignmentObjective.TargetedCompletion)
                throw new ArgumentException($"TargetedCompletionTrainerOptions.ProbeSequences is for the targeted-completion objective (its penalty weights); the objective is {AlignmentObjectives.Name(Objective)}.", nameof(ProbeSequences));
            if (Method.ProbeNorms is not null)
                throw new ArgumentException("TargetedCompletionTrainerOptions.ProbeSequences and Method.ProbeNorms exclude each other: either run the probe now or reuse the norms of an earlier run.", nameof(ProbeSequences));
        }
        if (Epochs is double e && !(e > 0 && double.IsFinite(e)))
            throw new ArgumentException($"TargetedCompletionTrainerOptions.Epochs must be positive (got {e}).", nameof(Epochs));
        return this;
    }
}
