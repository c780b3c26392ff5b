using System.Text;
using DeepAlign.Data;

namespace DeepAlign.Organism.Experiment;

/// <summary>
/// The data splits of the defense comparison (issue 13): the retrained defenses train on the <c>align</c> split's
/// <em>seen</em> harm categories and benign task kinds only, minus a validation split carved from those (for the shared
/// learning-rate grid); the held-out test prompts are divided into seen and unseen harm categories (and benign task
/// kinds), and every attack is reported on both separately. The test prompts are never used for training or selection.
/// </summary>
internal sealed record DefenseSplits(
    IReadOnlyList<DatasetRecord> TrainHarmful, IReadOnlyList<DatasetRecord> TrainBenign,
    IReadOnlyList<DatasetRecord> ValidationHarmful, IReadOnlyList<DatasetRecord> ValidationBenign,
    IReadOnlyList<DatasetRecord> TestSeenHarmful, IReadOnlyList<DatasetRecord> TestUnseenHarmful,
    IReadOnlyList<DatasetRecord> TestSeenBenign, IReadOnlyList<DatasetRecord> TestUnseenBenign,
    string Canonical)
{
    /// <summary>Splits a world by the options' unseen categories and validation sizes (deterministic: split order).</summary>
    public static DefenseSplits Create(OrganismWorld world, OrganismExperimentOptions options)
    {
        var unseenHarm = new HashSet<string>(options.UnseenHarmCategories, StringComparer.Ordinal);
        var unseenBenign = new HashSet<string>(options.UnseenBenignCategories, StringComparer.Ordinal);
        bool Seen(DatasetRecord r) => !unseenHarm.Contains(r.Category ?? "") && !unseenBenign.Contains(r.Category ?? "");
        var harmful = world.Align.Where(i => i.HarmfulResponse is not null && i.SafeResponse is not null).ToList();
        var benign = world.Align.Where(i => i.HarmfulResponse is null && i.Response is not null).ToList();
        var seenHarmful = harmful.Where(Seen).ToList();
        var seenBenign = benign.Where(Seen).ToList();
        int vh = Math.Min(options.ValidationHarmful, seenHarmful.Count / 4);
        int vb = Math.Min(options.ValidationBenign, seenBenign.Count / 4);
        // Validation = the first items of the (already shuffled) seen align items; training = the rest.
        var validationHarmful = seenHarmful.Take(vh).ToList();
        var validationBenign = seenBenign.Take(vb).ToList();
        var trainHarmful = seenHarmful.Skip(vh).ToList();
        var trainBenign = seenBenign.Skip(vb).ToList();
        if (trainHarmful.Count == 0 || trainBenign.Count == 0)
            throw new InvalidDataException($"The world's align split needs harmful items and benign items of seen categories to train the defenses (found {trainHarmful.Count} and {trainBenign.Count}).");
        var canonical = new StringBuilder("defense-splits-1;unseen-harm=").Append(string.Join(',', unseenHarm.Order(StringComparer.Ordinal)))
            .Append(";unseen-benign=").Append(string.Join(',', unseenBenign.Order(StringComparer.Ordinal)))
            .Append(";validation=").Append(vh).Append('+').Append(vb).ToString();
        return new DefenseSplits(trainHarmful, trainBenign, validationHarmful, validationBenign,
            world.HeldoutHarmful.Where(i => !unseenHarm.Contains(i.Category ?? "")).ToList(),
            world.HeldoutHarmful.Where(i => unseenHarm.Contains(i.Category ?? "")).ToList(),
            world.HeldoutBenign.Where(i => !unseenBenign.Contains(i.Category ?? "")).ToList(),
            world.HeldoutBenign.Where(i => unseenBenign.Contains(i.Category ?? "")).ToList(),
            canonical);
    }
}
