using System.Reflection;
using System.Text.RegularExpressions;
using DeepAlign.Tests.Support;
using FluentAssertions;
using Xunit;

namespace DeepAlign.Tests.Architecture;

/// <summary>
/// The layering of docs/architecture.md, checked on the real code: each package references only the packages below it
/// (assembly references), and inside DeepAlign.Core each layer folder uses only the layers below it (source references).
/// </summary>
public class LayeringTests
{
    /// <summary>DeepAlign.Core's layers, lowest first; a layer may use the layers before it.</summary>
    private static readonly string[] CoreLayers = ["Runtime", "Checkpoints", "Configuration", "Models", "Text", "Data", "Generation", "Training", "Method"];

    [Fact]
    public void Each_core_layer_uses_only_the_layers_below_it()
    {
        var root = Path.Combine(RepositoryPaths.Root, "src", "DeepAlign.Core");
        var reference = new Regex(@"\bDeepAlign\.(" + string.Join("|", CoreLayers) + @")\b");
        var violations = new List<string>();
        for (int i = 0; i < CoreLayers.Length; i++)
        {
            var allowed = CoreLayers.Take(i + 1).ToHashSet();
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root, CoreLayers[i]), "*.cs", SearchOption.AllDirectories))
            {
                // Doc comments may point anywhere (a <see cref> to a higher layer is not a dependency).
                var code = string.Join('\n', File.ReadLines(file).Where(l => !l.TrimStart().StartsWith("///", StringComparison.Ordinal)));
                foreach (var used in reference.Matches(code).Select(m => m.Groups[1].Value).Distinct())
                    if (!allowed.Contains(used)) violations.Add($"{Path.GetRelativePath(root, file)} ({CoreLayers[i]}) uses {used}");
            }
        }
        violations.Should().BeEmpty();
    }

    [Theory]
    [InlineData("DeepAlign.Core", new[] { "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "Sep", "Microsoft.ML.Tokenizers" })]
    [InlineData("DeepAlign.Evaluation", new[] { "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "DeepAlign.Core", "Microsoft.Extensions.AI.Abstractions" })]
    [InlineData("DeepAlign.Organism", new[] { "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "DeepAlign.Core", "DeepAlign.Evaluation" })]
    [InlineData("DeepAlign.Hosting", new[] { "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "DeepAlign.Core", "Microsoft.Extensions.AI.Abstractions", "Microsoft.Extensions.DependencyInjection.Abstractions", "Microsoft.Extensions.Options" })]
    [InlineData("DeepAlign.Reporting", new[] { "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "DeepAlign.Core", "DeepAlign.Evaluation", "ScottPlot", "SkiaSharp" })]
    [InlineData("DeepAlign.Testing", new[] { "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "DeepAlign.Core" })]
    public void Each_package_references_only_the_packages_below_it(string assembly, string[] allowed)
    {
        var path = Path.Combine(AppContext.BaseDirectory, assembly + ".dll");
        var references = Assembly.LoadFrom(path).GetReferencedAssemblies().Select(a => a.Name!)
            .Where(n => !n.StartsWith("System", StringComparison.Ordinal) && n is not "netstandard" and not "mscorlib" && !n.StartsWith("Microsoft.Win32", StringComparison.Ordinal))
            .ToList();
        references.Should().OnlyContain(n => allowed.Contains(n), $"{assembly} may reference only {string.Join(", ", allowed)}");
    }
}
