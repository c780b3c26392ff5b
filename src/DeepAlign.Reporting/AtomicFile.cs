namespace DeepAlign.Reporting;

/// <summary>Writes a file by writing a temporary sibling (same folder, same extension) and renaming it over the target.</summary>
internal static class AtomicFile
{
    public static string Write(string path, Action<string> writeTemp)
    {
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
