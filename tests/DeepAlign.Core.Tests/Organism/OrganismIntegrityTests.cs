using System.Security.Cryptography;
using System.Text.Json.Nodes;
using DeepAlign.Organism;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit;

namespace DeepAlign.Tests.Organism;

/// <summary>
/// The weight hashes of <c>build.json</c>: recorded by the build, shipped for the pinned pair, verified by
/// <see cref="OrganismBuilder.TryLoad"/> (throws <see cref="OrganismIntegrityException"/> naming the file) and by
/// <see cref="OrganismBuilder.LoadOrBuild"/> (logs a warning and rebuilds the entry).
/// </summary>
public sealed class OrganismIntegrityTests
{
    private static readonly string PinnedDirectory = Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "Fixtures", "organism", "pinned"), "organism-*").Single();

    private static string Sha256Hex(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyDirectory(d, Path.Combine(to, Path.GetFileName(d)));
    }

    private static void FlipByte(string path, long position)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = position;
        int b = stream.ReadByte();
        stream.Position = position;
        stream.WriteByte((byte)(b ^ 0x01));
    }

    [Fact]
    public void Shipped_pinned_build_json_records_the_hashes_of_the_shipped_weights()
    {
        var pair = OrganismBuilder.TryLoad(PinnedDirectory);
        pair.Should().NotBeNull();
        var hashes = pair!.Report.WeightSha256;
        hashes.Should().NotBeNull("the shipped build.json carries the weight hashes");
        hashes!.Keys.Should().BeEquivalentTo("base/model.safetensors", "aligned/model.safetensors");
        foreach (var (rel, hash) in hashes)
            hash.Should().Be(Sha256Hex(Path.Combine(PinnedDirectory, rel)), $"{rel} is the shipped file");
    }

    [Theory]
    [InlineData("aligned", 0.5)]
    [InlineData("base", 1.0)]
    public void Flipped_byte_in_a_copy_of_the_pinned_pair_is_detected_naming_the_file(string model, double where)
    {
        using var tmp = new TempDir();
        string dir = Path.Combine(tmp.Path, Path.GetFileName(PinnedDirectory));
        CopyDirectory(PinnedDirectory, dir);
        OrganismBuilder.TryLoad(dir).Should().NotBeNull("the untouched copy verifies");
        string file = Path.Combine(dir, model, "model.safetensors");
        long length = new FileInfo(file).Length;
        FlipByte(file, Math.Min(length - 1, (long)(length * where)));

        var act = () => OrganismBuilder.TryLoad(dir);
        var e = act.Should().Throw<OrganismIntegrityException>().Which;
        e.FilePath.Should().Be(file);
        e.Message.Should().Contain(file).And.Contain("corrupt organism cache entry").And.Contain(e.ExpectedSha256!).And.Contain(e.ActualSha256!);
        e.ActualSha256.Should().Be(Sha256Hex(file)).And.NotBe(e.ExpectedSha256);
    }

    [Fact]
    public void Missing_recorded_weight_file_or_unrecorded_extra_weight_file_is_detected()
    {
        using var tmp = new TempDir();
        string dir = Path.Combine(tmp.Path, "pair");
        CopyDirectory(PinnedDirectory, dir);
        string extra = Path.Combine(dir, "aligned", "model-00002-of-00002.safetensors");
        File.WriteAllBytes(extra, [1, 2, 3]);
        var e = FluentActions.Invoking(() => OrganismBuilder.TryLoad(dir)).Should().Throw<OrganismIntegrityException>().Which;
        e.FilePath.Should().Be(extra);
        e.ExpectedSha256.Should().BeNull();
        e.Message.Should().Contain("not recorded in build.json");
        File.Delete(extra);

        // A recorded file that is not one of the required ones (so TryLoad would not call the folder incomplete).
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "build.json")))!;
        json["WeightSha256"]!["base/adapter.safetensors"] = new string('0', 64);
        File.WriteAllText(Path.Combine(dir, "build.json"), json.ToJsonString());
        e = FluentActions.Invoking(() => OrganismBuilder.TryLoad(dir)).Should().Throw<OrganismIntegrityException>().Which;
        e.FilePath.Should().Be(Path.Combine(dir, "base", "adapter.safetensors"));
        e.ActualSha256.Should().BeNull();
        e.Message.Should().Contain("is missing");
    }

    [Fact]
    public void Old_build_json_without_hashes_still_loads_without_verification()
    {
        using var tmp = new TempDir();
        string dir = Path.Combine(tmp.Path, "pair");
        CopyDirectory(PinnedDirectory, dir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "build.json")))!.AsObject();
        json.Remove("WeightSha256").Should().BeTrue();
        File.WriteAllText(Path.Combine(dir, "build.json"), json.ToJsonString());
        FlipByte(Path.Combine(dir, "aligned", "model.safetensors"), 5000);

        var pair = OrganismBuilder.TryLoad(dir);
        pair.Should().NotBeNull("build.json files written before the hashes existed are read as before");
        pair!.Report.WeightSha256.Should().BeNull();
        pair.Report.CacheKey.Should().Be(Path.GetFileName(PinnedDirectory)["organism-".Length..]);
    }

    [Fact]
    public void Build_records_hashes_and_LoadOrBuild_rebuilds_a_tampered_cache_entry_with_a_warning_naming_the_file()
    {
        torch.set_num_threads(1);
        var world = OrganismWorld.Generate(OrganismDriftTests.DriftWorld with { PretrainSize = 60 });
        var recipe = OrganismRecipe.Tiny with { PretrainSteps = 4, AlignSteps = 2 };
        using var cache = new TempDir();
        var logger = new ListLogger();
        var pair = OrganismBuilder.LoadOrBuild(world, cache.Path, recipe, logger: logger);
        pair.FromCache.Should().BeFalse();
        var hashes = pair.Report.WeightSha256;
        hashes.Should().NotBeNull();
        hashes!.Keys.Should().Equal("aligned/model.safetensors", "base/model.safetensors");
        foreach (var (rel, hash) in hashes) hash.Should().Be(Sha256Hex(Path.Combine(pair.Directory, rel)));
        OrganismBuilder.TryLoad(pair.Directory)!.Report.Should().BeEquivalentTo(pair.Report, "build.json round-trips, hashes included");

        string file = Path.Combine(pair.Directory, "base", "model.safetensors");
        byte[] original = File.ReadAllBytes(file);
        FlipByte(file, original.Length - 3);
        FluentActions.Invoking(() => OrganismBuilder.TryLoad(pair.Directory)).Should().Throw<OrganismIntegrityException>().Which.FilePath.Should().Be(file);

        var again = OrganismBuilder.LoadOrBuild(world, cache.Path, recipe, logger: logger);
        again.FromCache.Should().BeFalse("a corrupt entry is rebuilt, not returned");
        again.Directory.Should().Be(pair.Directory);
        File.ReadAllBytes(file).Should().Equal(original, "the rebuilt entry has the deterministic weights back");
        logger.Warnings.Should().ContainSingle().Which.Should().Contain(file).And.Contain("Rebuilding");
        OrganismBuilder.LoadOrBuild(world, cache.Path, recipe, logger: logger).FromCache.Should().BeTrue("the rebuilt entry verifies");
        Directory.GetDirectories(cache.Path).Should().ContainSingle("the corrupt entry was replaced in place");
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Warnings { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning) Warnings.Add(formatter(state, exception));
        }
    }
}
