using System.Security.Cryptography;

namespace DeepAlign.Data;

/// <summary>Identifies a dataset file by content, so that partial reports of different data never merge.</summary>
public static class DatasetFingerprint
{
    /// <summary><c>sha256:</c> and the lowercase hex SHA-256 of the file's bytes (streamed).</summary>
    /// <param name="path">The dataset file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static string OfFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Dataset file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return "sha256:" + Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }
}
