namespace DeepAlign.Organism;

/// <summary>The pinned pair on disk: two Hugging Face folders (config, safetensors, tokenizer and generation config).</summary>
/// <param name="Directory">The pair's folder (<c>base/</c>, <c>aligned/</c>, <c>build.json</c>).</param>
/// <param name="CacheKey">The cache key.</param>
/// <param name="FromCache">Whether the pair was found in the cache (not built by this call).</param>
/// <param name="Report">What the build measured.</param>
public sealed record OrganismPair(string Directory, string CacheKey, bool FromCache, OrganismBuildReport Report)
{
    /// <summary>The base model folder.</summary>
    public string BaseDirectory => Path.Combine(Directory, "base");
    /// <summary>The aligned model folder.</summary>
    public string AlignedDirectory => Path.Combine(Directory, "aligned");
}
