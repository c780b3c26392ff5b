using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using DeepAlign.Method.Detection;
using DeepAlign.Models;
using DeepAlign.Testing;
using DeepAlign.Tests.Checkpoints;
using DeepAlign.Tests.Support;
using FluentAssertions;
using Xunit;
using Xunit.Abstractions;

namespace DeepAlign.Tests.Packaging;

/// <summary>
/// Packs every package under src/ (dotnet pack of the solution, using the solution build's outputs) into a temporary
/// feed, checks each package's contents and metadata, then builds and runs a fresh console app that restores DeepAlign
/// from that feed only (TorchSharp and Microsoft.Extensions from the normal source) and profiles a tiny pair. It fails on
/// a missing buildTransitive loader fix (on Debian 12 / Ubuntu 22.04 libLibTorchSharp.so then does not load), a wrong or
/// missing package dependency (restore or build fails), absent XML docs or README, or numbers that differ from the
/// in-process library.
/// </summary>
public sealed class PackageConsumerTests(ITestOutputHelper output)
{
    private static readonly string[] ExpectedDependencies = ["DeepAlign.Core", "TorchSharp", "Microsoft.Extensions.Logging.Abstractions", "Sep", "Microsoft.ML.Tokenizers"];

    [Fact]
    public void PackagesFromALocalFeedBuildAConsumerThatProfilesAPair()
    {
        var clock = Stopwatch.StartNew();
        string root = RepositoryPaths.Root;
        string configuration = BuildConfiguration();
        // A version no other run uses, so NuGet's global cache can never hand back an older build of the packages.
        string version = "0.0.0-pkgtest." + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff", CultureInfo.InvariantCulture) + "." + Environment.ProcessId;
        using var temp = new TempDir();
        string feed = Directory.CreateDirectory(temp.File("feed")).FullName;
        try
        {
            // 1. Pack the solution's packable projects (every src/ package) from the build the test run started with.
            Run(root, "dotnet", "pack", Path.Combine(root, "DeepAlign.Core.sln"), "--no-build", "-c", configuration, "-o", feed,
                $"-p:PackageVersion={version}", "-nologo", "-v", "q");
            output.WriteLine($"packed in {clock.Elapsed.TotalSeconds:0.0} s");
            var expected = Directory.GetDirectories(Path.Combine(root, "src"))
                .Where(d => File.Exists(Path.Combine(d, Path.GetFileName(d) + ".csproj"))).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
            expected.Should().Contain(["DeepAlign.Core", "DeepAlign.Evaluation", "DeepAlign.Testing"]);
            foreach (var id in expected) CheckPackage(feed, id!, version);

            // 2. A fresh console app with its own nuget.config: the local feed for DeepAlign, nuget.org for the rest.
            string app = Directory.CreateDirectory(temp.File("app")).FullName;
            string source = Path.Combine(AppContext.BaseDirectory, "ConsumerApp");
            File.Copy(Path.Combine(source, "Program.cs.txt"), Path.Combine(app, "Program.cs"));
            File.Copy(Path.Combine(source, "Consumer.csproj.txt"), Path.Combine(app, "Consumer.csproj"));
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                  </packageSources>
                  <packageSourceMapping>
                    <packageSource key="local"><package pattern="DeepAlign.*" /></packageSource>
                    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
            string torchSharp = typeof(TorchSharp.torch).Assembly.GetName().Version is { } v ? $"{v.Major}.{v.Minor}.{v.Build}" : throw new InvalidOperationException("TorchSharp has no version.");
            var build = Run(app, "dotnet", "build", "-c", "Release", "-nologo", "-v", "n", $"-p:DeepAlignVersion={version}", $"-p:TorchSharpVersion={torchSharp}");
            output.WriteLine($"consumer built in {clock.Elapsed.TotalSeconds:0.0} s");
            // The buildTransitive targets of DeepAlign.Core ran in the consumer's build (patched, or logged why not).
            build.Should().MatchRegex(@"DeepAlign: (.*libLibTorchSharp\.so: patched|.*libLibTorchSharp\.so left as shipped|.*libLibTorchSharp\.so: .*left unchanged)");
            string bin = Path.Combine(app, "bin", "Release", "net10.0");
            foreach (var doc in new[] { "DeepAlign.Core.xml", "DeepAlign.Testing.xml" })
                File.Exists(Path.Combine(bin, doc)).Should().BeTrue($"{doc} comes with the package");

            // 3. Run it and compare with the library in this process.
            string models = Directory.CreateDirectory(temp.File("models")).FullName;
            var stdout = Run(app, "dotnet", Path.Combine(bin, "Consumer.dll"), models);
            output.WriteLine(stdout);
            var m = Regex.Match(stdout, @"RESULT sequences=(\d+) tokens=(\d+) kl1=(\S+) u1=(\S+)");
            m.Success.Should().BeTrue("the app prints its RESULT line");
            stdout.Should().Contain("| 1 |", "the Markdown report has a row for position 1");
            var (sequences, tokens, kl1, u1) = Reference(Path.Combine(temp.Path, "reference"));
            int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture).Should().Be(sequences);
            long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture).Should().Be(tokens);
            double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture).Should().BeApproximately(kl1, 1e-6 * Math.Max(1, Math.Abs(kl1)));
            double.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture).Should().BeApproximately(u1, 1e-6);
            kl1.Should().BeGreaterThan(0, "two differently seeded models disagree");
            output.WriteLine($"total {clock.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            // The packages restored into the global cache under this run's unique version.
            string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            foreach (var dir in Directory.Exists(cache) ? Directory.GetDirectories(cache, "deepalign.*") : [])
            {
                string versioned = Path.Combine(dir, version);
                if (Directory.Exists(versioned)) try { Directory.Delete(versioned, recursive: true); } catch (IOException) { }
            }
        }
    }

    /// <summary>The same profile computed by the referenced library.</summary>
    private static (int Sequences, long Tokens, double Kl1, double U1) Reference(string root)
    {
        var config = TinyModelFactory.LlamaConfig(vocabSize: 64, hiddenSize: 32, layers: 1, heads: 2, kvHeads: 1, intermediateSize: 64);
        using var baseModel = CausalLanguageModel.FromPretrained(TinyModelFactory.SaveFolder(Path.Combine(root, "base"), config, seed: 1));
        using var aligned = CausalLanguageModel.FromPretrained(TinyModelFactory.SaveFolder(Path.Combine(root, "aligned"), config, seed: 2));
        var detector = new BaseFavoredTokenDetector(baseModel, aligned);
        var aggregator = new ProfileAggregator();
        foreach (var s in detector.Profile([new ProfileInput([1, 5, 6], [7, 8, 9, 10]), new ProfileInput([1, 11], [12, 13])])) aggregator.Add(s);
        var a = aggregator.Result();
        return (a.Sequences, a.Tokens, a.ByPosition[0].Kl.Mean, a.ByPosition[0].U.Mean);
    }

    /// <summary>Contents and metadata of one package and its symbols package.</summary>
    private static void CheckPackage(string feed, string id, string version)
    {
        string nupkg = Path.Combine(feed, $"{id}.{version}.nupkg"), snupkg = Path.Combine(feed, $"{id}.{version}.snupkg");
        File.Exists(nupkg).Should().BeTrue($"{id} is packed");
        File.Exists(snupkg).Should().BeTrue($"{id} has a symbols package");
        using (var zip = ZipFile.OpenRead(nupkg))
        {
            var names = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
            foreach (var tfm in new[] { "net8.0", "net10.0" })
            {
                names.Should().Contain($"lib/{tfm}/{id}.dll");
                names.Should().Contain($"lib/{tfm}/{id}.xml", $"{id} ships its XML docs for {tfm}");
                zip.GetEntry($"lib/{tfm}/{id}.xml")!.Length.Should().BeGreaterThan(1000);
            }
            names.Should().Contain("README.md");
            if (id == "DeepAlign.Core") names.Should().Contain("buildTransitive/DeepAlign.Core.targets", "consumers need the TorchSharp loader fix");
            names.Should().NotContain(n => n.EndsWith(".png", StringComparison.Ordinal) || n.EndsWith(".pdb", StringComparison.Ordinal));
            using var nuspec = zip.GetEntry($"{id}.nuspec")!.Open();
            var doc = XDocument.Load(nuspec);
            XNamespace ns = doc.Root!.Name.Namespace;
            var meta = doc.Root.Element(ns + "metadata")!;
            meta.Element(ns + "version")!.Value.Should().Be(version);
            var license = meta.Element(ns + "license");
            license.Should().NotBeNull();
            license!.Attribute("type")!.Value.Should().Be("expression");
            license.Value.Should().Be("MIT");
            meta.Element(ns + "readme")!.Value.Should().Be("README.md");
            meta.Element(ns + "icon").Should().BeNull();
            meta.Element(ns + "repository")!.Attribute("type")!.Value.Should().Be("git");
            meta.Element(ns + "repository")!.Attribute("commit")?.Value.Should().MatchRegex("^[0-9a-f]{40}$");
            meta.Element(ns + "description")!.Value.Should().NotBeNullOrWhiteSpace();
            var deps = meta.Descendants(ns + "dependency").ToList();
            // Project references become package dependencies at this very version.
            foreach (var d in deps.Where(d => d.Attribute("id")!.Value.StartsWith("DeepAlign.", StringComparison.Ordinal)))
                d.Attribute("version")!.Value.Should().Be(version, $"{id} depends on {d.Attribute("id")!.Value} of the same build");
            if (id != "DeepAlign.Core")
                deps.Select(d => d.Attribute("id")!.Value).Should().Contain("DeepAlign.Core");
            else
                deps.Select(d => d.Attribute("id")!.Value).Distinct().Should().BeEquivalentTo(ExpectedDependencies.Skip(1), "Core depends on TorchSharp, Logging.Abstractions, Sep (CSV datasets) and ML.Tokenizers (tokenizer interop) only");
            // Test and build-only tools never leak into a package's dependencies.
            deps.Select(d => d.Attribute("id")!.Value).Should().NotContain(n => n.Contains("xunit", StringComparison.OrdinalIgnoreCase)
                || n.Contains("CodeAnalysis", StringComparison.Ordinal) || n.Contains("SourceLink", StringComparison.Ordinal));
        }
        using (var zip = ZipFile.OpenRead(snupkg))
        {
            var names = zip.Entries.Select(e => e.FullName).ToList();
            names.Should().Contain($"lib/net10.0/{id}.pdb").And.Contain($"lib/net8.0/{id}.pdb");
        }
    }

    /// <summary>Debug or Release: the configuration this test assembly was built with (its bin/&lt;config&gt;/net10.0 folder).</summary>
    private static string BuildConfiguration() => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    /// <summary>Runs a process with the test host's MSBuild variables removed; throws with its output when it fails.</summary>
    private string Run(string directory, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.ToList())
            if (key.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                || key is "DOTNET_HOST_PATH")
                psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in 5 minutes.");
        }
        if (p.ExitCode != 0)
        {
            output.WriteLine(stdout.Result);
            output.WriteLine(stderr.Result);
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {p.ExitCode}:\n{Tail(stdout.Result)}\n{Tail(stderr.Result)}");
        }
        return stdout.Result;
    }

    private static string Tail(string s) => s.Length <= 6000 ? s : s[^6000..];
}
