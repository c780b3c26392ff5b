using System.Text.Json;

namespace DeepAlign.Data;

/// <summary>
/// Target strings kept apart from the prompts, keyed by record id: HarmBench's
/// <c>data/optimizer_targets/harmbench_targets_text.json</c> (<c>{"BehaviorID": "Sure, here's ..."}</c>) and files like
/// it. <see cref="Apply"/> sets each record's <c>harmful_response</c> (the prefix the prefilling attacks force, and the
/// response profiles score) from its id.
/// </summary>
public static class DatasetTargets
{
    /// <summary>Reads a targets file: one JSON object whose keys are record ids and whose values are the target strings.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DatasetFormatException">Not a JSON object of strings; the message names the file and key.</exception>
    public static IReadOnlyDictionary<string, string> ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var doc = DeepAlign.Runtime.SafeFiles.ReadJson(path, (m, e) => new DatasetFormatException(m, e));
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new DatasetFormatException($"{path}: a targets file is one JSON object {{\"id\": \"target\", ...}}, found {doc.RootElement.ValueKind}.");
        var targets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.String)
                throw new DatasetFormatException($"{path}: \"{property.Name}\" must be a string target, found {property.Value.ValueKind}.");
            if (!targets.TryAdd(property.Name, property.Value.GetString()!))
                throw new DatasetFormatException($"{path}: \"{property.Name}\" appears twice.");
        }
        if (targets.Count == 0) throw new DatasetFormatException($"{path}: the targets file holds no targets.");
        return targets;
    }

    /// <summary>Sets <see cref="DatasetRecord.HarmfulResponse"/> of each record from its <see cref="DatasetRecord.Id"/>
    /// (a record that already has one keeps it), streaming.</summary>
    /// <param name="records">The records.</param>
    /// <param name="targets">Targets by id (<see cref="ReadFile"/>).</param>
    /// <returns>The records with their targets; enumerating throws <see cref="DatasetFormatException"/> at a record
    /// without an id or whose id has no target.</returns>
    public static IEnumerable<DatasetRecord> Apply(IEnumerable<DatasetRecord> records, IReadOnlyDictionary<string, string> targets)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(targets);
        return records.Select(r =>
        {
            if (r.HarmfulResponse is not null) return r;
            if (r.Id is null) throw new DatasetFormatException($"{r.Location}: the record has no id to look its target up by.");
            return targets.TryGetValue(r.Id, out var target)
                ? r with { HarmfulResponse = target }
                : throw new DatasetFormatException($"{r.Location}: the targets file has no target for id \"{r.Id}\".");
        });
    }
}
