using System.Text;

namespace DeepAlign.Runtime;

/// <summary>
/// The library's one way to write a file so that readers never see it half-written: the content goes to a temporary
/// sibling (same folder, same extension) that is then renamed over the target; on failure the temporary file is removed
/// and the target is untouched. Checkpoints, exports, reports, datasets and caches all write through it.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    /// <param name="path">Target file (its folder is created when missing).</param>
    /// <param name="text">Content.</param>
    /// <returns>The full path written.</returns>
    public static string WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Write(path, stream => stream.Write(new UTF8Encoding(false).GetBytes(text)));
    }

    /// <summary>Writes the bytes <paramref name="write"/> puts into a stream, flushed to disk before the rename.</summary>
    /// <param name="path">Target file (its folder is created when missing).</param>
    /// <param name="write">Writes the complete content.</param>
    /// <returns>The full path written.</returns>
    public static string Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        return Write(path, temp =>
        {
            using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            write(stream);
            stream.Flush(flushToDisk: true);
        });
    }

    /// <summary>Lets <paramref name="writeTemp"/> write the temporary sibling, then renames it over <paramref name="path"/>.</summary>
    /// <param name="path">Target file (its folder is created when missing).</param>
    /// <param name="writeTemp">Writes the complete content to the path it is given (for APIs that only take a path).</param>
    /// <returns>The full path written.</returns>
    public static string Write(string path, Action<string> writeTemp)
    {
        ArgumentNullException.ThrowIfNull(writeTemp);
        var (full, temp) = Paths(path);
        try
        {
            writeTemp(temp);
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        return full;
    }

    /// <summary>Copies a file atomically (the copy appears complete or not at all).</summary>
    /// <param name="source">File to copy.</param>
    /// <param name="destination">Target file.</param>
    /// <returns>The full path written.</returns>
    public static string Copy(string source, string destination)
    {
        ArgumentException.ThrowIfNullOrEmpty(source);
        return Write(destination, temp => File.Copy(source, temp, overwrite: true));
    }

    /// <summary>
    /// Opens a file to be written in pieces (e.g. a stream of JSONL lines): <see cref="PendingFile.Commit"/> renames it
    /// into place; disposing without committing deletes it.
    /// </summary>
    /// <param name="path">Target file (its folder is created when missing).</param>
    public static PendingFile Create(string path)
    {
        var (full, temp) = Paths(path);
        return new PendingFile(full, temp);
    }

    internal static (string Full, string Temp) Paths(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        return (full, Path.Combine(dir, $".tmp-{Guid.NewGuid():N}-{Path.GetFileName(full)}")); // keeps the extension
    }

    internal static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
