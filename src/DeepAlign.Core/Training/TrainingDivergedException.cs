namespace DeepAlign.Training;

/// <summary>Training produced a non-finite loss or gradient; the message names the step. Weights were not updated by that step.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What diverged and at which step.</param>
    public TrainingDivergedException(string message) : base(message) { }
}
