using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DeepAlign.Checkpoints;
using DeepAlign.Organism;
using DeepAlign.Tests.Checkpoints;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using DeepAlign.Runtime;

namespace DeepAlign.Tests.Organism;

/// <summary>
/// Drift detector of the organism build: builds a scaled-down pair (<see cref="OrganismRecipe.Tiny"/> on a small world)
/// and compares its numerics with <c>Fixtures/organism/drift/tiny-pair-reference.json</c>, committed from an earlier
/// build. Any change of data, data order, loss, optimiser or initialisation changes the per-step losses or the weights
/// far beyond the tolerances (1e-5 relative on losses, 1e-4 relative on weight statistics), which are loose enough for
/// CPU-kernel rounding differences across machines. The fixture is rewritten by running this test with
/// <c>DEEPALIGN_REGENERATE_FIXTURES=1</c> (see docs/organism.md, "Keeping the pinned pair honest").
/// </summary>
public sealed class OrganismDriftTests(TinyDriftBuild build, ITestOutputHelper output) : IClassFixture<TinyDriftBuild>
{
    /// <summary>Environment variable that makes the test rewrite the committed fixture instead of comparing with it.</summary>
    public const string RegenerateVariable = "DEEPALIGN_REGENERATE_FIXTURES";

    private const string FixtureRelativePath = "Fixtures/organism/drift/tiny-pair-reference.json";
    private const string Format = "deepalign.organism-drift/1";
    private const double LossRelativeTolerance = 1e-5;
    private const double WeightRelativeTolerance = 1e-4;
    private const int SamplesPerTensor = 8;

    private const string RegenerateCommand =
        $"{RegenerateVariable}=1 dotnet test tests/DeepAlign.Core.Tests -c Release --filter \"FullyQualifiedName~OrganismDriftTests\"";
    private const string RepinCommand = "tests/scripts/organism/repin-pinned-pair.sh";

    /// <summary>The small world of the drift check (independent of other tests' worlds, so editing those does not move it).</summary>
    internal static readonly WorldOptions DriftWorld = new()
    {
        PretrainSize = 200, AlignHarmfulSize = 20, AlignBenignSize = 20, HeldoutHarmfulSize = 16, HeldoutBenignSize = 16,
    };

    [Fact]
    public void Tiny_pair_build_matches_the_committed_reference_numerics()
    {
        var actual = build.Numerics;
        output.WriteLine($"tiny pair built and summarised in {build.Seconds:0.0} s (key {actual.CacheKey})");

        if (Environment.GetEnvironmentVariable(RegenerateVariable) == "1")
        {
            string path = Path.Combine(SourceTestProjectDirectory(), FixtureRelativePath.Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, JsonSerializer.Serialize(actual, Json) + "\n");
            output.WriteLine($"{RegenerateVariable}=1: rewrote {path} ({new FileInfo(path).Length:N0} bytes)");
            Compare(JsonSerializer.Deserialize<DriftReference>(File.ReadAllText(path), Json)!, actual).Should().BeEmpty("the rewritten fixture round-trips");
            return;
        }

        string fixture = Path.Combine(AppContext.BaseDirectory, FixtureRelativePath);
        File.Exists(fixture).Should().BeTrue($"{FixtureRelativePath} is committed; create it with `{RegenerateCommand}`");
        var expected = JsonSerializer.Deserialize<DriftReference>(File.ReadAllText(fixture), Json)!;
        expected.Format.Should().Be(Format);
        var differences = Compare(expected, actual);
        if (differences.Count > 0) throw new Xunit.Sdk.XunitException(FailureMessage(expected, actual, differences));
    }

    [Fact]
    public void Check_tolerates_another_reduction_order_but_catches_a_twenty_percent_change_of_weight_decay()
    {
        // Real builds: two libtorch threads reduce in another order (a stand-in for another CPU's kernels) and must pass;
        // weight decay 0.012 instead of 0.01 (a small optimiser change) must fail. The cache key differs in both (the
        // recipe changed), so only numerics are compared. (Measured once: a learning rate 0.1% higher, one more warmup
        // step or another seed give 80-300 differences; 2 threads move weights by at most 8e-7 relative.)
        var reference = build.Numerics;
        var twoThreads = BuildReference(OrganismRecipe.Tiny with { Threads = 2 });
        Compare(reference with { CacheKey = twoThreads.CacheKey }, twoThreads).Should().BeEmpty("rounding differences are within the tolerances");
        var decay = BuildReference(OrganismRecipe.Tiny with { WeightDecay = 0.012 });
        var decayDiffs = Compare(reference with { CacheKey = decay.CacheKey }, decay);
        output.WriteLine($"weight decay 0.012: {decayDiffs.Count} differences, e.g. {decayDiffs.FirstOrDefault()}");
        decayDiffs.Should().NotBeEmpty("a 20% change of weight decay moves the weights beyond 1e-4 relative");
    }

    [Fact]
    public void Comparison_flags_a_changed_loss_a_changed_weight_and_a_changed_key_but_not_rounding()
    {
        // The comparison itself, on a synthetic reference: rounding-sized changes pass, anything larger is reported.
        var reference = new DriftReference
        {
            Format = Format, CodeVersion = OrganismRecipe.CodeVersion, CacheKey = "0123456789abcdef", Recipe = "r", Parameters = 10,
            Pretrain = new StageNumerics { Tokens = 100, Epochs = 1.5, FirstLoss = 6.0, FinalLoss = 3.0, Losses = [6.0, 5.0, 3.0] },
            Align = new StageNumerics { Tokens = 50, Epochs = 2, FirstLoss = 2.0, FinalLoss = 1.0, Losses = [2.0, 1.0] },
            WeightSha256 = new Dictionary<string, string> { ["base/model.safetensors"] = "aa" },
            Tensors = new Dictionary<string, TensorSummary>
            {
                ["base/w"] = new() { Shape = [2, 2], Mean = 0.1, Rms = 0.5, Projection = 0.3, Samples = [0.5, -0.5, 0.4, -0.6] },
            },
        };
        Compare(reference, reference).Should().BeEmpty();
        var rounded = reference with
        {
            Pretrain = reference.Pretrain with { Losses = [6.0 * (1 + 2e-6), 5.0, 3.0] },
            Tensors = new Dictionary<string, TensorSummary> { ["base/w"] = reference.Tensors["base/w"] with { Samples = [0.5 + 2e-5, -0.5, 0.4, -0.6] } },
            WeightSha256 = new Dictionary<string, string> { ["base/model.safetensors"] = "bb" },
        };
        Compare(reference, rounded).Should().BeEmpty("CPU-kernel rounding (and hence other file bytes) must not fail the check");
        var lossChanged = reference with { Align = reference.Align with { Losses = [2.0, 1.0 * (1 + 1e-4)] } };
        Compare(reference, lossChanged).Should().ContainSingle().Which.Should().Contain("align loss at step 2");
        var weightChanged = reference with
        {
            Tensors = new Dictionary<string, TensorSummary> { ["base/w"] = reference.Tensors["base/w"] with { Projection = 0.3 + 1e-4 } },
        };
        Compare(reference, weightChanged).Should().ContainSingle().Which.Should().Contain("base/w projection");
        Compare(reference, reference with { Pretrain = reference.Pretrain with { Tokens = 101 } }).Should().ContainSingle().Which.Should().Contain("pretrain tokens");
        var keyChanged = reference with { CacheKey = "fedcba9876543210" };
        var diffs = Compare(reference, keyChanged);
        diffs.Should().ContainSingle().Which.Should().Contain("cache key");
        FailureMessage(reference, keyChanged, diffs).Should().Contain("regenerate this fixture").And.Contain(RegenerateCommand);
        FailureMessage(reference, lossChanged, Compare(reference, lossChanged)).Should()
            .StartWith("training numerics changed").And.Contain("bump OrganismRecipe.CodeVersion").And.Contain(RepinCommand).And.Contain(RegenerateCommand);
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    internal static DriftReference BuildReference(OrganismRecipe recipe)
    {
        torch.set_num_threads(1);
        var world = OrganismWorld.Generate(DriftWorld);
        using var dir = new TempDir();
        var losses = new Dictionary<OrganismBuildStage, List<double>> { [OrganismBuildStage.Pretrain] = [], [OrganismBuildStage.Align] = [] };
        var progress = new StepLosses(p =>
        {
            if (p.TotalSteps > 0 && losses.TryGetValue(p.Stage, out var list)) list.Add(p.Loss);
        });
        var report = OrganismBuilder.Build(world, dir.Path, recipe, progress);
        losses[OrganismBuildStage.Pretrain].Should().HaveCount(recipe.PretrainSteps, "the build reports every pretraining step");
        losses[OrganismBuildStage.Align].Should().HaveCount(recipe.AlignSteps, "the build reports every safety-SFT step");

        var tensors = new SortedDictionary<string, TensorSummary>(StringComparer.Ordinal);
        foreach (var sub in new[] { "base", "aligned" })
        {
            using var checkpoint = SafetensorsCheckpoint.Open(Path.Combine(dir.Path, sub));
            foreach (var name in checkpoint.TensorNames)
            {
                using var t = checkpoint.Load(name, torch.ScalarType.Float32);
                tensors[$"{sub}/{name}"] = Summarise(t.shape, t.contiguous().data<float>().ToArray());
            }
        }
        return new DriftReference
        {
            Format = Format,
            Note = "Numerics of OrganismRecipe.Tiny built from the drift world (OrganismDriftTests.DriftWorld). Regenerate with: " + RegenerateCommand,
            CodeVersion = OrganismRecipe.CodeVersion,
            CacheKey = report.CacheKey,
            Recipe = report.Recipe,
            Parameters = report.Parameters,
            Pretrain = Stage(report.Pretrain, losses[OrganismBuildStage.Pretrain]),
            Align = Stage(report.Align, losses[OrganismBuildStage.Align]),
            WeightSha256 = new SortedDictionary<string, string>(report.WeightSha256!.ToDictionary(), StringComparer.Ordinal),
            Tensors = tensors,
        };
    }

    private static StageNumerics Stage(OrganismStageReport r, List<double> losses) =>
        new() { Tokens = r.Tokens, Epochs = r.Epochs, FirstLoss = r.FirstLoss, FinalLoss = r.FinalLoss, Losses = losses.ToArray() };

    /// <summary>
    /// Mean, root mean square, the projection on a fixed pseudo-random unit vector (moves with any change of the
    /// tensor) and <see cref="SamplesPerTensor"/> elements at evenly spread positions.
    /// </summary>
    internal static TensorSummary Summarise(long[] shape, float[] values)
    {
        int n = values.Length;
        double sum = 0, sumSq = 0, proj = 0, rNorm = 0;
        var rng = new SplitMix64(0x5DEECE66DUL);
        for (int i = 0; i < n; i++)
        {
            double v = values[i];
            double r = 2 * rng.NextDouble() - 1;
            sum += v;
            sumSq += v * v;
            proj += v * r;
            rNorm += r * r;
        }
        int k = Math.Min(SamplesPerTensor, n);
        var samples = Enumerable.Range(0, k).Select(j => (double)values[(int)((long)j * n / k + (n / k) / 2)]).ToArray();
        return new TensorSummary
        {
            Shape = shape, Mean = sum / n, Rms = Math.Sqrt(sumSq / n), Projection = rNorm > 0 ? proj / Math.Sqrt(rNorm) : 0, Samples = samples,
        };
    }

    /// <summary>Every difference beyond the tolerances, as one line each (empty: the numerics match).</summary>
    internal static List<string> Compare(DriftReference expected, DriftReference actual)
    {
        var d = new List<string>();
        string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        if (expected.CacheKey != actual.CacheKey)
            d.Add($"cache key {actual.CacheKey} != {expected.CacheKey} (the world, the recipe or OrganismRecipe.CodeVersion changed)");
        if (expected.Parameters != actual.Parameters) d.Add($"parameters {actual.Parameters} != {expected.Parameters}");
        foreach (var (stage, e, a) in new[] { ("pretrain", expected.Pretrain, actual.Pretrain), ("align", expected.Align, actual.Align) })
        {
            if (e.Tokens != a.Tokens) d.Add($"{stage} tokens {a.Tokens} != {e.Tokens} (the data pipeline changed)");
            if (Math.Abs(e.Epochs - a.Epochs) > 1e-12) d.Add($"{stage} epochs {F(a.Epochs)} != {F(e.Epochs)}");
            if (e.Losses.Length != a.Losses.Length) { d.Add($"{stage} steps {a.Losses.Length} != {e.Losses.Length}"); continue; }
            for (int i = 0; i < e.Losses.Length; i++)
                if (!Close(a.Losses[i], e.Losses[i], LossRelativeTolerance * Math.Abs(e.Losses[i])))
                    d.Add($"{stage} loss at step {i + 1}: {F(a.Losses[i])} != {F(e.Losses[i])} (relative tolerance {LossRelativeTolerance:0e0})");
            if (!Close(a.FinalLoss, e.FinalLoss, LossRelativeTolerance * Math.Abs(e.FinalLoss)))
                d.Add($"{stage} final loss {F(a.FinalLoss)} != {F(e.FinalLoss)}");
        }
        foreach (var name in expected.Tensors.Keys.Union(actual.Tensors.Keys).Order(StringComparer.Ordinal))
        {
            if (!expected.Tensors.TryGetValue(name, out var e)) { d.Add($"{name}: tensor not in the reference"); continue; }
            if (!actual.Tensors.TryGetValue(name, out var a)) { d.Add($"{name}: tensor missing from the build"); continue; }
            if (!e.Shape.SequenceEqual(a.Shape)) { d.Add($"{name}: shape [{string.Join(", ", a.Shape)}] != [{string.Join(", ", e.Shape)}]"); continue; }
            // Tolerances are 1e-4 of the tensor's scale: of rms for the mean, the rms and the projection (a change of
            // every element by a relative 1e-4 in a direction unrelated to the fixed pseudo-random vector moves the
            // projection by about 1e-4 rms), of max(|x|, rms) for single elements. Measured on the tiny build:
            // 2 libtorch threads instead of 1 (another reduction order) move them by at most 8e-7, the losses by 9e-8.
            double rms = e.Rms;
            if (!Close(a.Mean, e.Mean, WeightRelativeTolerance * rms)) d.Add($"{name} mean {F(a.Mean)} != {F(e.Mean)}");
            if (!Close(a.Rms, e.Rms, WeightRelativeTolerance * rms)) d.Add($"{name} rms {F(a.Rms)} != {F(e.Rms)}");
            if (!Close(a.Projection, e.Projection, WeightRelativeTolerance * rms)) d.Add($"{name} projection {F(a.Projection)} != {F(e.Projection)}");
            for (int i = 0; i < Math.Min(e.Samples.Length, a.Samples.Length); i++)
                if (!Close(a.Samples[i], e.Samples[i], WeightRelativeTolerance * Math.Max(Math.Abs(e.Samples[i]), rms)))
                    d.Add($"{name} sample {i}: {F(a.Samples[i])} != {F(e.Samples[i])}");
        }
        return d;
    }

    private static bool Close(double actual, double expected, double tolerance) =>
        double.IsFinite(actual) && Math.Abs(actual - expected) <= tolerance;

    internal static string FailureMessage(DriftReference expected, DriftReference actual, IReadOnlyList<string> differences)
    {
        var sb = new StringBuilder();
        bool keyChanged = expected.CacheKey != actual.CacheKey;
        bool numericsChanged = differences.Any(x => !x.StartsWith("cache key", StringComparison.Ordinal));
        if (keyChanged)
        {
            sb.AppendLine($"organism cache key changed ({expected.CacheKey} -> {actual.CacheKey}; code version {expected.CodeVersion} -> {actual.CodeVersion}): " +
                $"the world, the recipe or OrganismRecipe.CodeVersion changed{(numericsChanged ? ", and so did the training numerics" : "")}.");
            sb.AppendLine($"If this is intended: re-pin the shipped pair if the default pair is affected (`{RepinCommand}`), then regenerate this fixture (`{RegenerateCommand}`) and commit both.");
        }
        else
        {
            sb.AppendLine($"training numerics changed under the same cache key {actual.CacheKey}: users' cached pairs (~/.cache/deepalign/organism-KEY) and the shipped pinned pair no longer match what this code builds.");
            sb.AppendLine("If the change is intended:");
            sb.AppendLine($"  1. bump OrganismRecipe.CodeVersion (now \"{actual.CodeVersion}\", src/DeepAlign.Core/Organism/OrganismRecipe.cs) so every cache key changes;");
            sb.AppendLine($"  2. re-pin the shipped pair: `{RepinCommand}` (builds the default pair cold and replaces tests/DeepAlign.Core.Tests/Fixtures/organism/pinned/);");
            sb.AppendLine($"  3. regenerate this fixture: `{RegenerateCommand}`; commit all three.");
            sb.AppendLine("If it is not intended: something changed the data, data order, loss, optimiser or initialisation; find and revert it.");
        }
        sb.AppendLine($"{differences.Count} difference(s) from {FixtureRelativePath}:");
        foreach (var line in differences.Take(15)) sb.AppendLine("  " + line);
        if (differences.Count > 15) sb.AppendLine($"  ... and {differences.Count - 15} more");
        bool sameBytes = expected.WeightSha256.Count > 0 && expected.WeightSha256.All(kv => actual.WeightSha256.TryGetValue(kv.Key, out var h) && h == kv.Value);
        sb.AppendLine(sameBytes ? "(the weight files are byte-identical to the reference build)" : "(the weight files differ in bytes from the reference build)");
        return sb.ToString();
    }

    /// <summary>The test project's source folder (where the fixture is committed), found upwards from the test binaries.</summary>
    private static string SourceTestProjectDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "DeepAlign.Core.Tests");
            if (File.Exists(Path.Combine(candidate, "DeepAlign.Core.Tests.csproj"))) return candidate;
            if (File.Exists(Path.Combine(dir.FullName, "DeepAlign.Core.Tests.csproj"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"tests/DeepAlign.Core.Tests not found above {AppContext.BaseDirectory}; cannot rewrite {FixtureRelativePath}.");
    }

    private sealed class StepLosses(Action<OrganismBuildProgress> report) : IProgress<OrganismBuildProgress>
    {
        public void Report(OrganismBuildProgress value) => report(value);
    }
}

/// <summary>The tiny pair built once for <see cref="OrganismDriftTests"/>, summarised.</summary>
public sealed class TinyDriftBuild
{
    public TinyDriftBuild()
    {
        var clock = Stopwatch.StartNew();
        Numerics = OrganismDriftTests.BuildReference(OrganismRecipe.Tiny);
        Seconds = clock.Elapsed.TotalSeconds;
    }

    internal DriftReference Numerics { get; }
    public double Seconds { get; }
}

/// <summary>The committed numerics of the scaled-down build (<c>tiny-pair-reference.json</c>).</summary>
internal sealed record DriftReference
{
    public required string Format { get; init; }
    public string? Note { get; init; }
    public required string CodeVersion { get; init; }
    public required string CacheKey { get; init; }
    public required string Recipe { get; init; }
    public required long Parameters { get; init; }
    public required StageNumerics Pretrain { get; init; }
    public required StageNumerics Align { get; init; }
    /// <summary>Informational: whether the bytes are identical too (not compared; other CPUs may round differently).</summary>
    public required IReadOnlyDictionary<string, string> WeightSha256 { get; init; }
    public required IReadOnlyDictionary<string, TensorSummary> Tensors { get; init; }
}

/// <summary>Numerics of one training stage: real tokens, epochs and the loss of every optimiser step.</summary>
internal sealed record StageNumerics
{
    public required long Tokens { get; init; }
    public required double Epochs { get; init; }
    public required double FirstLoss { get; init; }
    public required double FinalLoss { get; init; }
    public required double[] Losses { get; init; }
}

/// <summary>Summary statistics of one weight tensor.</summary>
internal sealed record TensorSummary
{
    public required long[] Shape { get; init; }
    public required double Mean { get; init; }
    public required double Rms { get; init; }
    public required double Projection { get; init; }
    public required double[] Samples { get; init; }
}
