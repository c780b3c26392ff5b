using System.Security.Cryptography;
using System.Text;
using DeepAlign.Data;

namespace DeepAlign.Evaluation;

/// <summary>
/// One harmful prompt's verdicts under one attack, keyed so that the same item can be matched across runs, shards and
/// tools: by its dataset id (AdvBench: the 0-based row index; HarmBench: the BehaviorID) and a hash of its prompt text,
/// which another tool can compute from the same dataset row without DeepAlign.
/// </summary>
/// <param name="Key">The stable key, <see cref="KeyOf"/>: <c>id@</c> and the first 16 hex digits of <paramref name="PromptSha256"/>
/// (<c>#index@...</c> when the record has no id).</param>
/// <param name="Id">The record's id, or null.</param>
/// <param name="Index">The record's 0-based index in the whole evaluated dataset (also under sharding).</param>
/// <param name="PromptSha256">Lowercase hex SHA-256 of the UTF-8 bytes of the user prompt text (<see cref="DatasetRecord.UserPrompt"/>:
/// for HarmBench's contextual behaviors the context, separator and behavior, exactly HarmBench's test case).</param>
/// <param name="Verdicts">Verdict per judge (<c>Harmful</c>, <c>Refused</c> or <c>Other</c>), in the attack's judge order;
/// for the decoding sweep: <c>Harmful</c> under any setting, <c>Refused</c> under every setting, else <c>Other</c>.</param>
public sealed record ItemResult(string Key, string? Id, int Index, string PromptSha256, IReadOnlyDictionary<string, string> Verdicts)
{
    /// <summary>Lowercase hex SHA-256 of the UTF-8 bytes of <paramref name="prompt"/>.</summary>
    /// <param name="prompt">The prompt text.</param>
    public static string PromptHash(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(prompt))).ToLowerInvariant();
    }

    /// <summary>The key of an item: <c>id@hash16</c>, or <c>#index@hash16</c> without an id.</summary>
    /// <param name="id">The record id, or null.</param>
    /// <param name="index">The record's dataset index.</param>
    /// <param name="promptSha256">The prompt hash (<see cref="PromptHash"/>).</param>
    public static string KeyOf(string? id, int index, string promptSha256)
    {
        ArgumentNullException.ThrowIfNull(promptSha256);
        return (id ?? "#" + index.ToString(System.Globalization.CultureInfo.InvariantCulture)) + "@" + promptSha256[..Math.Min(16, promptSha256.Length)];
    }

    /// <summary>The result of <paramref name="record"/> at dataset index <paramref name="index"/>.</summary>
    /// <param name="record">The harmful record.</param>
    /// <param name="index">Its 0-based index in the whole evaluated dataset.</param>
    /// <param name="verdicts">Verdict per judge.</param>
    public static ItemResult Create(DatasetRecord record, int index, IReadOnlyDictionary<string, string> verdicts)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(verdicts);
        string hash = PromptHash(record.UserPrompt);
        return new ItemResult(KeyOf(record.Id, index, hash), record.Id, index, hash, verdicts);
    }
}
