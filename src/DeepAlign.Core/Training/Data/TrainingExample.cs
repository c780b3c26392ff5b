using DeepAlign.Data;

namespace DeepAlign.Training.Data;

/// <summary>
/// One tokenized training sequence: prompt, then response, with the tokens that are training targets marked.
/// </summary>
/// <remarks>
/// <see cref="Targets"/>[i] = true means <c>Ids[i]</c> is predicted (from position i - 1) and enters the loss.
/// Response position j (docs/method.md section 0) of token i is <c>i - ResponseStart + 1</c> for
/// <c>i &gt;= ResponseStart</c>; a forced harmful prefix of length <see cref="ForcedPrefixLength"/> occupies
/// j = 1..K_pre and is not a target.
/// </remarks>
public sealed record TrainingExample
{
    /// <summary>Token ids (prompt followed by response), int64 values.</summary>
    public required long[] Ids { get; init; }

    /// <summary>Per token: whether it is a training target. Same length as <see cref="Ids"/>; element 0 must be false.</summary>
    public required bool[] Targets { get; init; }

    /// <summary>Index in <see cref="Ids"/> of the first response token (response position j = 1); equals the prompt length.</summary>
    public required int ResponseStart { get; init; }

    /// <summary>Number of forced (non-target) response tokens at the start of the response (K_pre); 0 for plain SFT.</summary>
    public int ForcedPrefixLength { get; init; }

    /// <summary>Tag of the dataset the row came from (the mixer sets it to the source name, e.g. <c>harmful</c>, <c>benign</c>).</summary>
    public string Source { get; init; } = "default";

    /// <summary>The record's <c>id</c> field, if any.</summary>
    public string? Id { get; init; }

    /// <summary>Where the row came from (<c>file:line</c>), for error messages.</summary>
    public string? Location { get; init; }

    /// <summary>
    /// For a preference pair (<see cref="PreferenceExampleBuilder"/>): the rejected sequence, sharing this example's
    /// prompt; this example is then the chosen one. <see cref="BatchCollator"/> puts the two in the same micro-batch
    /// (see <see cref="TrainingBatch.PreferencePairs"/>). Null for single sequences.
    /// </summary>
    public TrainingExample? Rejected { get; init; }

    /// <summary>Number of target tokens.</summary>
    public int TargetCount => Targets.Count(t => t);

    /// <summary>Checks shapes and invariants; throws <see cref="DatasetFormatException"/> naming <see cref="Location"/>.</summary>
    public void Validate()
    {
        string where = Location ?? "<example>";
        if (Ids is null || Ids.Length == 0) throw new DatasetFormatException($"{where}: the example has no tokens.");
        if (Targets is null || Targets.Length != Ids.Length)
            throw new DatasetFormatException($"{where}: the target mask has {Targets?.Length ?? 0} entries but there are {Ids.Length} ids.");
        if (Targets[0]) throw new DatasetFormatException($"{where}: the first token cannot be a target (nothing predicts it).");
        if (ResponseStart < 0 || ResponseStart > Ids.Length)
            throw new DatasetFormatException($"{where}: response start {ResponseStart} is outside the sequence of {Ids.Length} tokens.");
        if (ForcedPrefixLength < 0 || ResponseStart + ForcedPrefixLength > Ids.Length)
            throw new DatasetFormatException($"{where}: forced prefix length {ForcedPrefixLength} does not fit the response.");
        foreach (var id in Ids)
            if (id < 0) throw new DatasetFormatException($"{where}: negative token id {id}.");
        if (Rejected is not null)
        {
            if (Rejected.Rejected is not null) throw new DatasetFormatException($"{where}: a rejected sequence cannot carry a rejected sequence of its own.");
            Rejected.Validate();
        }
    }
}
