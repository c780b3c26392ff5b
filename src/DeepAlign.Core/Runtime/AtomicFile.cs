using System.Text;

namespace DeepAlign.Runtime;

/// <summary>
/// Writes a file so that readers never see it half-written: the content goes to a temporary sibling (same folder, same
/// extension) that is then renamed over the target; on failure the temporary file is removed and the target is untouched.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    /// <param name="path">Target file (its folder is created when missing).</param>
    /// <param name="text">Content.</param>
    /// <returns>The full path written.</returns>
    public static string WriteAllText(string path, string text) => Write(path, temp => File.WriteAllText(temp, text, new UTF8Encoding(false)));

    /// <summary>Lets <paramref name="writeTemp"/> write the temporary sibling, then renames it over <paramref name="path"/>.</summary>
    /// <param name="path">Target file (its folder is created when missing).</param>
    /// <param name="writeTemp">Writes the complete content to the path it is given.</param>
    /// <returns>The full path written.</returns>
    public static string Write(string path, Action<string> writeTemp)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(writeTemp);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".tmp-{Guid.NewGuid():N}-{Path.GetFileName(full)}"); // keeps the extension
        try
        {
            writeTemp(temp);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
        return full;
    }
}
