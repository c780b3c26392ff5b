namespace DeepAlign.Organism.Experiment;

/// <summary>One point of the shared learning-rate grid: a retrained defense at one learning rate, measured on the validation split.</summary>
/// <param name="Defense">Defense name.</param>
/// <param name="LearningRate">Peak learning rate of this point.</param>
/// <param name="ValidationPrefillAsr">Mean prefilling ASR (content judge) over the validation prefilling lengths on the validation harmful items.</param>
/// <param name="ValidationBenignAccuracy">Benign exact-match accuracy on the validation benign items.</param>
/// <param name="Eligible">Whether the point keeps benign accuracy within the criterion's tolerance of the aligned model's.</param>
/// <param name="Selected">Whether the criterion picked this point for the defense.</param>
/// <param name="Training">The training record of the point's model.</param>
/// <param name="Directory">The point's model folder.</param>
public sealed record LearningRateGridPoint(string Defense, double LearningRate, double ValidationPrefillAsr, double ValidationBenignAccuracy,
    bool Eligible, bool Selected, TrainedDefenseReport Training, string Directory);
