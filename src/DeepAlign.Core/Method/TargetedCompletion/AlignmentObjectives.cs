namespace DeepAlign.Method.TargetedCompletion;

/// <summary>Names of <see cref="AlignmentObjective"/> values as on the command line.</summary>
public static class AlignmentObjectives
{
    /// <summary>Every objective, in a fixed order.</summary>
    public static IReadOnlyList<AlignmentObjective> All { get; } =
        new[] { AlignmentObjective.TargetedCompletion, AlignmentObjective.Augmentation, AlignmentObjective.Constrained, AlignmentObjective.Sft };

    /// <summary>The command-line name: <c>targeted-completion</c>, <c>augmentation</c>, <c>constrained</c> or <c>sft</c>.</summary>
    /// <param name="objective">The objective.</param>
    /// <returns>Its name.</returns>
    public static string Name(AlignmentObjective objective) => objective switch
    {
        AlignmentObjective.TargetedCompletion => "targeted-completion",
        AlignmentObjective.Augmentation => "augmentation",
        AlignmentObjective.Constrained => "constrained",
        AlignmentObjective.Sft => "sft",
        _ => throw new ArgumentOutOfRangeException(nameof(objective), objective, "Unknown objective."),
    };

    /// <summary>Parses a command-line name (case-insensitive).</summary>
    /// <param name="name">One of the names of <see cref="Name"/>.</param>
    /// <returns>The objective.</returns>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static AlignmentObjective Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var o in All)
            if (string.Equals(Name(o), name.Trim(), StringComparison.OrdinalIgnoreCase)) return o;
        throw new ArgumentException($"Unknown objective '{name}'; choose one of {string.Join(", ", All.Select(Name))}.", nameof(name));
    }
}
