namespace DeepAlign.Evaluation;

/// <summary>
/// What a results file was measured on, so that runs can be compared across tools and machines: the tool, the dataset
/// (path, format, content fingerprint, size), the models, the judges and the attack settings. Optional in
/// <see cref="EvaluationReport"/> (results files of schema 1 have none).
/// </summary>
public sealed record RunProvenance
{
    /// <summary>The tool and its version, e.g. <c>deepalign 1.0.0</c>.</summary>
    public string Tool { get; init; } = "deepalign";

    /// <summary>The harmful dataset attacked, or null.</summary>
    public DatasetProvenance? Dataset { get; init; }

    /// <summary>Models by role (<c>target</c>, <c>base</c>, ...): their folder or hub id.</summary>
    public IReadOnlyDictionary<string, string> Models { get; init; } = new Dictionary<string, string>();

    /// <summary>Judges by name (as in the rates) with what each one is (e.g. <c>exact content judge, spec sha256:...</c>).</summary>
    public IReadOnlyDictionary<string, string> Judges { get; init; } = new Dictionary<string, string>();

    /// <summary>The attack settings (seed, decoding, prefill lengths, sweep lists, ...), or null.</summary>
    public SafetyEvaluationOptions? AttackConfig { get; init; }
}
