namespace DeepAlign.Generation;

/// <summary>
/// How one row chooses its tokens: greedy, or sampled with temperature, top-k and top-p (docs/method.md section 2 order).
/// A <see cref="GenerationRequest"/> may carry its own settings (<see cref="GenerationRequest.Sampling"/>), so one
/// batch can decode rows with different settings, e.g. every setting of a decoding-parameter sweep at once; a row's
/// tokens do not depend on the settings of the other rows.
/// </summary>
public sealed record SamplingSettings
{
    /// <summary>Greedy decoding (argmax, first index on ties).</summary>
    public static SamplingSettings Greedy { get; } = new();

    /// <summary>False: greedy (argmax). True: sample with <see cref="Temperature"/>, <see cref="TopK"/>, <see cref="TopP"/>.</summary>
    public bool DoSample { get; init; }
    /// <summary>Divides the scores before sampling; must be positive. Default 1.0.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keeps only the k best tokens (ties with the k-th score are kept); 0 turns it off. Default 0.</summary>
    public int TopK { get; init; }
    /// <summary>Keeps the smallest set of best tokens whose mass (after temperature and top-k) reaches p; 1.0 turns it off. Default 1.0.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>The sampling fields of call-level options.</summary>
    /// <param name="options">The options.</param>
    /// <returns>Settings with the options' DoSample, Temperature, TopK and TopP.</returns>
    public static SamplingSettings From(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new SamplingSettings { DoSample = options.DoSample, Temperature = options.Temperature, TopK = options.TopK, TopP = options.TopP };
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    /// <returns>This instance, for chaining.</returns>
    public SamplingSettings Validate()
    {
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentException($"SamplingSettings.Temperature must be a positive finite number; got {Temperature}. For greedy decoding set DoSample = false.", nameof(Temperature));
        if (TopK < 0)
            throw new ArgumentException($"SamplingSettings.TopK must be 0 (off) or positive; got {TopK}.", nameof(TopK));
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentException($"SamplingSettings.TopP must lie in (0, 1]; got {TopP}.", nameof(TopP));
        return this;
    }
}
