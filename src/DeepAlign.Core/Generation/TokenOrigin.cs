namespace DeepAlign.Generation;

/// <summary>Who chose a generated token.</summary>
public enum TokenOrigin
{
    /// <summary>Greedy or sampled from the scores.</summary>
    Model,

    /// <summary>Overridden by <see cref="GenerationOptions.TokenForcer"/>.</summary>
    Forcer,
}
