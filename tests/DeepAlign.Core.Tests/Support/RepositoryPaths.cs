namespace DeepAlign.Tests.Support;

/// <summary>Locates the repository root (the folder holding DeepAlign.Core.sln) from the test output.</summary>
internal static class RepositoryPaths
{
    private static readonly Lazy<string> RootLazy = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DeepAlign.Core.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"DeepAlign.Core.sln not found above {AppContext.BaseDirectory}.");
    });

    /// <summary>The repository root.</summary>
    public static string Root => RootLazy.Value;
}
