using DeepAlign.Models.Lora;

namespace DeepAlign.Training;

/// <summary>Settings of <see cref="DpoTrainer.TrainFromFolders"/>.</summary>
public sealed record DpoTrainerOptions
{
    /// <summary>The loss (beta, loss type, label smoothing). Default TRL's.</summary>
    public DpoOptions Dpo { get; init; } = new();

    /// <summary>The training loop; null uses <see cref="DpoTrainer.DefaultTrainerOptions"/>.</summary>
    public TrainerOptions? Trainer { get; init; }

    /// <summary>LoRA adapters on the student; null (default): full fine-tuning.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>
    /// Under LoRA without a reference folder: use the student with its adapters disabled as the reference
    /// (<see cref="AdaptersDisabledModel"/>, no second copy of the weights), as TRL does with PEFT. False loads a second
    /// copy of the starting model. Default true.
    /// </summary>
    public bool ReferenceFromDisabledAdapters { get; init; } = true;

    /// <summary>When set, the number of optimiser steps is this many epochs over the pairs (the loop's MaxSteps is ignored).</summary>
    public double? Epochs { get; init; }

    /// <summary>The effective loop settings.</summary>
    public TrainerOptions EffectiveTrainer => Trainer ?? DpoTrainer.DefaultTrainerOptions;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    /// <returns>This instance.</returns>
    public DpoTrainerOptions Validate()
    {
        if (Dpo is null) throw new ArgumentException("DpoTrainerOptions.Dpo must be set.", nameof(Dpo));
        Dpo.Validate();
        EffectiveTrainer.Validate();
        Lora?.Validate();
        if (Epochs is double e && !(e > 0 && double.IsFinite(e)))
            throw new ArgumentException($"DpoTrainerOptions.Epochs must be positive (got {e}).", nameof(Epochs));
        return this;
    }
}
