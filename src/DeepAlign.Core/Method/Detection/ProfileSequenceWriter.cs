using System.Text;
using System.Text.Json;
using DeepAlign.Runtime;

namespace DeepAlign.Method.Detection;

/// <summary>
/// Streams per-sequence profiles to a JSONL file (one line per sequence, schema in docs/profile-report.md). Lines go to a
/// temporary file (<see cref="AtomicFile.Create"/>) that <see cref="Commit"/> renames into place; disposing without committing deletes it.
/// </summary>
public sealed class ProfileSequenceWriter : IDisposable
{
    /// <summary>Default file name next to <c>profile.json</c>.</summary>
    public const string DefaultFileName = "sequences.jsonl";

    private PendingFile? _file;
    private StreamWriter? _writer;

    /// <summary>Opens the writer.</summary>
    /// <param name="path">Final file path.</param>
    public ProfileSequenceWriter(string path)
    {
        _file = AtomicFile.Create(path);
        _writer = new StreamWriter(_file.Stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
    }

    /// <summary>Appends one sequence.</summary>
    /// <param name="profile">The profile.</param>
    public void Write(SequenceProfile profile)
    {
        ObjectDisposedException.ThrowIf(_writer is null, this);
        _writer.WriteLine(ToJsonLine(profile));
    }

    /// <summary>Writes every profile of a stream and passes it on.</summary>
    /// <param name="profiles">The profiles.</param>
    /// <returns>The same profiles.</returns>
    public IEnumerable<SequenceProfile> WriteAll(IEnumerable<SequenceProfile> profiles)
    {
        foreach (var p in profiles)
        {
            Write(p);
            yield return p;
        }
    }

    /// <summary>Flushes and renames the file into place.</summary>
    /// <returns>The final path.</returns>
    public string Commit()
    {
        ObjectDisposedException.ThrowIf(_writer is null || _file is null, this);
        _writer.Dispose();
        _writer = null;
        string path = _file.Commit();
        _file = null;
        return path;
    }

    /// <summary>Closes the writer; an uncommitted file is deleted.</summary>
    public void Dispose()
    {
        _writer?.Dispose();
        _writer = null;
        _file?.Dispose();
        _file = null;
    }

    /// <summary>One sequence as a single JSON line.</summary>
    /// <param name="profile">The profile.</param>
    /// <returns>Compact JSON.</returns>
    public static string ToJsonLine(SequenceProfile profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteNumber("index", profile.Index);
            w.WriteString("id", profile.Id);
            w.WriteString("location", profile.Location);
            w.WriteNumber("prompt_tokens", profile.PromptIds.Count);
            w.WriteStartArray("positions");
            foreach (var p in profile.Positions)
            {
                w.WriteStartObject();
                w.WriteNumber("position", p.Position);
                w.WriteNumber("token_id", p.TokenId);
                w.WriteString("token", p.Token);
                ProfileReportWriter.Number(w, "log_ratio", p.LogRatio);
                w.WriteBoolean("base_favored", p.BaseFavored);
                ProfileReportWriter.Number(w, "kl", p.KlAlignedBase);
                ProfileReportWriter.Number(w, "kl_reverse", p.KlBaseAligned);
                ProfileReportWriter.Number(w, "m_b", p.MassBase);
                ProfileReportWriter.Number(w, "m_a", p.MassAligned);
                ProfileReportWriter.Number(w, "top_mass_b", p.TopMassBase);
                ProfileReportWriter.Number(w, "u", p.Incompleteness);
                w.WriteStartArray("base_favored_top");
                foreach (var item in p.TopItems)
                {
                    w.WriteStartObject();
                    w.WriteNumber("token_id", item.TokenId);
                    w.WriteString("token", item.Token);
                    ProfileReportWriter.Number(w, "p_b", item.ProbBase);
                    ProfileReportWriter.Number(w, "p_a", item.ProbAligned);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
