namespace DeepAlign.Runtime;

/// <summary>Writes a folder's files under a temporary sibling name, then renames it into place.</summary>
internal static class AtomicDirectory
{
    /// <summary>Test hook: runs after the temporary folder is complete and before the rename.</summary>
    internal static Action<string>? BeforeCommit;

    public static void Write(string directory, Action<string> writeInto)
    {
        var full = Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            writeInto(temp);
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
