using DeepAlign.Data;
namespace DeepAlign.Training.Data;

/// <summary>Builds a <see cref="TrainingExample"/> from a record.</summary>
public interface IExampleBuilder
{
    /// <summary>
    /// True when <see cref="Build"/> ignores its random source; such examples are built once when the data is
    /// loaded. Random builders (e.g. a random harmful-prefix length) are rebuilt at every draw.
    /// </summary>
    bool IsDeterministic { get; }

    /// <summary>Builds the example; throws <see cref="DatasetFormatException"/> naming <see cref="DatasetRecord.Location"/>.</summary>
    /// <param name="record">The dataset line.</param>
    /// <param name="random">Random source seeded from (seed, source, epoch, index): identical after a resume.</param>
    TrainingExample Build(DatasetRecord record, Random random);
}
