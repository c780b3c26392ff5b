namespace DeepAlign.Organism.Experiment;

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously on the reporting thread (unlike <see cref="Progress{T}"/>, which posts).</summary>
internal sealed class ActionProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
