using DeepAlign.Data;
using DeepAlign.Training.Data;

namespace DeepAlign.Training;

/// <summary>
/// Bounds token ids by the model's vocabulary before they reach native code (docs/reliability.md): an id past the
/// embedding would otherwise abort inside libtorch with a C++ stack trace instead of naming the data line.
/// </summary>
internal static class TrainingInputGuard
{
    public static IReadOnlyList<TrainingExample> Check(IReadOnlyList<TrainingExample> examples, int vocabSize)
    {
        foreach (var e in examples)
            foreach (var id in e.Ids)
                if (id < 0 || id >= vocabSize)
                    throw new DatasetFormatException($"{e.Location ?? "<example>"}: token id {id} is outside the model's vocabulary [0, {vocabSize}).");
        return examples;
    }
}
