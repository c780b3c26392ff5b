namespace DeepAlign.Training;

/// <summary>Shape of the learning-rate curve after warmup.</summary>
public enum LearningRateScheduleKind
{
    /// <summary>Half-cosine decay from the peak to <see cref="TrainerOptions.MinLearningRateRatio"/> x peak at the last step.</summary>
    Cosine,
    /// <summary>Linear decay from the peak to <see cref="TrainerOptions.MinLearningRateRatio"/> x peak at the last step.</summary>
    Linear,
    /// <summary>Constant at the peak after warmup.</summary>
    Constant,
}
