namespace DeepAlign.Runtime;

/// <summary>
/// A file being written through a temporary sibling (<see cref="AtomicFile.Create"/>): write to <see cref="Stream"/>,
/// then <see cref="Commit"/> renames it over the target; disposing without committing deletes it.
/// </summary>
public sealed class PendingFile : IDisposable
{
    private readonly string _path;
    private readonly string _temp;
    private FileStream? _stream;

    internal PendingFile(string path, string temp)
    {
        _path = path;
        _temp = temp;
        _stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
    }

    /// <summary>The stream to write the content to.</summary>
    public Stream Stream => _stream ?? throw new ObjectDisposedException(nameof(PendingFile));

    /// <summary>Flushes to disk and renames the file into place.</summary>
    /// <returns>The final full path.</returns>
    public string Commit()
    {
        var stream = _stream ?? throw new ObjectDisposedException(nameof(PendingFile));
        stream.Flush(flushToDisk: true);
        stream.Dispose();
        _stream = null;
        try
        {
            File.Move(_temp, _path, overwrite: true);
        }
        catch
        {
            AtomicFile.TryDelete(_temp);
            throw;
        }
        return _path;
    }

    /// <summary>Closes the file; an uncommitted file is deleted.</summary>
    public void Dispose()
    {
        if (_stream is null) return;
        _stream.Dispose();
        _stream = null;
        AtomicFile.TryDelete(_temp);
    }
}
