using DeepAlign.Models.Lora;

namespace DeepAlign.Training;

/// <summary>Settings of <see cref="SftTrainer.TrainFromFolders"/>.</summary>
public sealed record SftTrainingOptions
{
    /// <summary>The training loop (steps, batch, learning rate, schedule, checkpoints, seed).</summary>
    public TrainerOptions Trainer { get; init; } = new();

    /// <summary>LoRA adapters on the student; null (default): full fine-tuning.</summary>
    public LoraOptions? Lora { get; init; }

    /// <summary>Mixing weights of the data files, one per file (default: equal).</summary>
    public IReadOnlyList<double>? DataWeights { get; init; }

    /// <summary>Which response to train on: <c>response</c> (default), <c>safe_response</c> or <c>harmful_response</c>.</summary>
    public string ResponseField { get; init; } = "response";

    /// <summary>
    /// When set, the number of optimiser steps is this many epochs over the first data file (with the other files mixed
    /// in by weight), and <see cref="TrainerOptions.MaxSteps"/> is ignored.
    /// </summary>
    public double? Epochs { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public SftTrainingOptions Validate()
    {
        if (Trainer is null) throw new ArgumentException("SftTrainingOptions.Trainer must be set.", nameof(Trainer));
        Trainer.Validate();
        Lora?.Validate();
        if (DataWeights is not null && DataWeights.Any(w => !(w > 0) || !double.IsFinite(w)))
            throw new ArgumentException("SftTrainingOptions.DataWeights must be positive.", nameof(DataWeights));
        if (ResponseField is not ("response" or "safe_response" or "harmful_response"))
            throw new ArgumentException($"SftTrainingOptions.ResponseField must be response, safe_response or harmful_response (got '{ResponseField}').", nameof(ResponseField));
        if (Epochs is double e && !(e > 0 && double.IsFinite(e)))
            throw new ArgumentException($"SftTrainingOptions.Epochs must be positive (got {e}).", nameof(Epochs));
        return this;
    }
}
