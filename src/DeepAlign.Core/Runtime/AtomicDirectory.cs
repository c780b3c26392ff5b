namespace DeepAlign.Runtime;

/// <summary>
/// Writes a folder's files under a temporary sibling name, then renames it into place (an existing folder is moved
/// aside first and deleted after), so readers see the old folder or the new one, never half of one. The library's one
/// atomic folder write: adapters, checkpoints, retrained defenses.
/// </summary>
internal static class AtomicDirectory
{
    /// <summary>Test hook: runs after the temporary folder is complete and before the rename.</summary>
    internal static Action<string>? BeforeCommit;

    /// <summary>Lets <paramref name="writeInto"/> fill a temporary sibling folder, then renames it to <paramref name="directory"/>.</summary>
    /// <param name="directory">Target folder.</param>
    /// <param name="writeInto">Writes the complete content into the folder it is given.</param>
    /// <param name="tempDirectory">The temporary folder to use (a sibling of the target; default <c>.NAME.tmp-GUID</c>).</param>
    /// <param name="beforeCommit">Runs after the content is complete and before the rename (a caller's test hook).</param>
    public static void Write(string directory, Action<string> writeInto, string? tempDirectory = null, Action<string>? beforeCommit = null)
    {
        var full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(parent);
        string temp = tempDirectory ?? Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            writeInto(temp);
            beforeCommit?.Invoke(temp);
            BeforeCommit?.Invoke(temp);
            if (Directory.Exists(full))
            {
                string old = Path.Combine(parent, $".{Path.GetFileName(full)}.old-{Guid.NewGuid():N}");
                Directory.Move(full, old);
                Directory.Move(temp, full);
                try { Directory.Delete(old, true); } catch (IOException) { }
            }
            else
            {
                Directory.Move(temp, full);
            }
        }
        catch
        {
            try { Directory.Delete(temp, true); } catch (IOException) { }
            throw;
        }
    }
}
