namespace DeepAlign.Organism;

/// <summary>
/// A weight file of an organism pair folder does not match the SHA-256 recorded in its <c>build.json</c> (it was
/// modified, truncated or replaced after the build), is missing although recorded, or is a <c>*.safetensors</c> file
/// the build did not write. The message names the file and both hashes.
/// </summary>
/// <remarks>
/// <see cref="OrganismBuilder.TryLoad"/> throws it; <see cref="OrganismBuilder.LoadOrBuild"/> catches it, logs a
/// warning with the message and rebuilds the cache entry in place.
/// </remarks>
public sealed class OrganismIntegrityException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The weight file at fault.</param>
    /// <param name="expectedSha256">The hash recorded in <c>build.json</c> (null: the file is not recorded there).</param>
    /// <param name="actualSha256">The hash of the file on disk (null: the file is missing).</param>
    public OrganismIntegrityException(string filePath, string? expectedSha256, string? actualSha256)
        : base(Format(filePath, expectedSha256, actualSha256))
    {
        FilePath = filePath;
        ExpectedSha256 = expectedSha256;
        ActualSha256 = actualSha256;
    }

    /// <summary>The weight file at fault.</summary>
    public string FilePath { get; }
    /// <summary>The SHA-256 (lower-case hex) recorded in <c>build.json</c>, or null when the file is not recorded there.</summary>
    public string? ExpectedSha256 { get; }
    /// <summary>The SHA-256 (lower-case hex) of the file on disk, or null when the file is missing.</summary>
    public string? ActualSha256 { get; }

    private static string Format(string file, string? expected, string? actual) => (expected, actual) switch
    {
        (null, _) => $"{file}: weight file not recorded in {OrganismBuilder.ReportFile} (the pair folder was changed after the build); corrupt organism cache entry.",
        (_, null) => $"{file}: weight file recorded in {OrganismBuilder.ReportFile} (SHA-256 {expected}) is missing; corrupt organism cache entry.",
        _ => $"{file}: SHA-256 {actual} does not match {expected} recorded in {OrganismBuilder.ReportFile} (the weights were modified after the build); corrupt organism cache entry.",
    };
}
