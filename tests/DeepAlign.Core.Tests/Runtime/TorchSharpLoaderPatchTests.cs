using System.Diagnostics;
using System.Security.Cryptography;
using DeepAlign.Tests.Support;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Runtime;

public class TorchSharpLoaderPatchTests
{
    [Fact]
    public void A_tensor_op_runs_so_the_native_runtime_loaded()
    {
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var s = a.sum();
        s.item<float>().Should().Be(15f);
    }

    [Fact]
    public void The_patched_library_in_the_output_has_no_missing_version()
    {
        if (!OperatingSystem.IsLinux()) return;
        var lib = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        var ldd = Run("ldd", lib, AppContext.BaseDirectory);
        ldd.Should().NotContain("not found").And.NotContain("GLIBCXX_3.4.32");
    }

    [Fact]
    public void The_patch_task_is_idempotent_and_never_touches_its_source()
    {
        if (!OperatingSystem.IsLinux()) return;
        var original = Path.Combine(NuGetPackagesRoot(), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        File.Exists(original).Should().BeTrue($"the TorchSharp package should be restored at {original}");
        var originalHash = Hash(original);

        var dir = Directory.CreateTempSubdirectory("deepalign-patch-").FullName;
        try
        {
            var (copy, project) = PatchProject(dir, original, mode: null);

            var first = Run("dotnet", $"msbuild \"{project}\" -t:Patch -nologo -v:n", dir);
            first.Should().Contain("patched");
            var once = Hash(copy);
            once.Should().NotBe(originalHash);
            // The isolated copy has no libtorch siblings, so ldd reports those libraries missing; what must be gone
            // is every missing symbol version ("version `GLIBCXX_3.4.32' not found").
            Run("ldd", copy, dir).Should().NotContain("version `");

            var second = Run("dotnet", $"msbuild \"{project}\" -t:Patch -nologo -v:n", dir);
            second.Should().Contain("left unchanged");
            Hash(copy).Should().Be(once, "patching an already patched file must leave it byte-identical");
            Hash(original).Should().Be(originalHash, "the NuGet cache must never be modified");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Auto_mode_patches_only_when_the_system_libstdcxx_lacks_the_version()
    {
        if (!OperatingSystem.IsLinux()) return;
        var lib = new[] { "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6" }.FirstOrDefault(File.Exists);
        if (lib is null) return;
        bool systemHasIt = System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(lib)).Contains("GLIBCXX_3.4.32\0", StringComparison.Ordinal);
        var original = Path.Combine(NuGetPackagesRoot(), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var dir = Directory.CreateTempSubdirectory("deepalign-patch-auto-").FullName;
        try
        {
            var (copy, project) = PatchProject(dir, original, mode: "auto");
            var output = Run("dotnet", $"msbuild \"{project}\" -t:Patch -nologo -v:n", dir);
            if (systemHasIt)
            {
                output.Should().Contain("left as shipped");
                Hash(copy).Should().Be(Hash(original));
            }
            else
            {
                output.Should().Contain("patched");
                Hash(copy).Should().NotBe(Hash(original), "this machine's libstdc++ lacks GLIBCXX_3.4.32, so auto mode must patch");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A copy of the library in <paramref name="dir"/> and a project that runs the patch task on it.</summary>
    private static (string Copy, string Project) PatchProject(string dir, string original, string? mode)
    {
        var copy = Path.Combine(dir, "libLibTorchSharp.so");
        File.Copy(original, copy);
        var targets = Path.Combine(RepositoryPaths.Root, "src", "DeepAlign.Core", "buildTransitive", "DeepAlign.Core.targets");
        var project = Path.Combine(dir, "patch.proj");
        string modeAttribute = mode is null ? "" : $" Mode=\"{mode}\"";
        File.WriteAllText(project, $"""
            <Project>
              <Import Project="{targets}" />
              <Target Name="Patch">
                <ItemGroup><Lib Include="{copy}" /></ItemGroup>
                <DeepAlignPatchLibTorchSharp Files="@(Lib)"{modeAttribute} />
              </Target>
            </Project>
            """);
        return (copy, project);
    }

    private static string NuGetPackagesRoot() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static string Run(string file, string args, string workDir)
    {
        var psi = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workDir,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return stdout.Result + stderr.Result;
    }
}
