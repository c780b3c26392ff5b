using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using DeepAlign.Checkpoints;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DeepAlign.Tests.Checkpoints;

public class SafetensorsTests
{
    /// <summary>Writes a file with a hand-made header (and optionally a lying length field).</summary>
    private static void WriteRaw(string path, string header, byte[] data, ulong? lengthField = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        using var f = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, lengthField ?? (ulong)h.Length);
        f.Write(len);
        f.Write(h);
        f.Write(data);
    }

    public static TheoryData<ScalarType> AllDTypes => new()
    {
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    };

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Round_trip_preserves_values_for_every_dtype(ScalarType dtype)
    {
        using var dir = new TempDir();
        using var source = (arange(-12, 12, dtype: float64) * 0.37).reshape(2, 3, 4);
        using var t = dtype == ScalarType.Bool ? source.gt(0) : source.to_type(dtype);
        using var scalar = tensor(5.0).to_type(dtype == ScalarType.Bool ? ScalarType.Float32 : dtype);
        SafetensorsWriter.Save(dir.File("a.safetensors"), new[] { ("x", t), ("s", scalar) });

        using var file = SafetensorsFile.Open(dir.File("a.safetensors"));
        file.GetInfo("x").ScalarType.Should().Be(dtype);
        file.GetInfo("x").Shape.Should().Equal(2, 3, 4);
        file.GetInfo("s").Shape.Should().BeEmpty();
        using var back = file.Load("x");
        back.dtype.Should().Be(dtype);
        back.shape.Should().Equal(2, 3, 4);
        back.SameAs(t).Should().BeTrue();
        using var s = file.Load("s");
        s.SameAs(scalar).Should().BeTrue();
    }

    [Fact]
    public void Header_is_sorted_space_padded_to_8_bytes_and_carries_metadata()
    {
        using var dir = new TempDir();
        using var b = ones(3);
        using var a = zeros(2, 2, dtype: ScalarType.BFloat16);
        SafetensorsWriter.Save(dir.File("m.safetensors"), new[] { ("b", b), ("a", a) });
        var bytes = File.ReadAllBytes(dir.File("m.safetensors"));
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        (n % 8).Should().Be(0);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        header.TrimEnd(' ').Length.Should().BeLessThanOrEqualTo((int)n);
        header.Should().EndWith(header.TrimEnd(' ').Length == n ? "}" : " ");
        header.IndexOf("\"a\"", StringComparison.Ordinal).Should().BeLessThan(header.IndexOf("\"b\"", StringComparison.Ordinal));
        using var doc = JsonDocument.Parse(header.TrimEnd(' '));
        doc.RootElement.GetProperty("a").GetProperty("data_offsets")[0].GetInt64().Should().Be(0);
        doc.RootElement.GetProperty("a").GetProperty("data_offsets")[1].GetInt64().Should().Be(8);
        doc.RootElement.GetProperty("b").GetProperty("data_offsets")[0].GetInt64().Should().Be(8);
        bytes.Length.Should().Be((int)(8 + n + 8 + 12));

        using var file = SafetensorsFile.Open(dir.File("m.safetensors"));
        file.Metadata.Should().ContainKey("format").WhoseValue.Should().Be("pt");
        file.Tensors.Select(t => t.Name).Should().Equal("a", "b");
    }

    [Fact]
    public void Reads_a_file_written_byte_by_byte_by_hand()
    {
        using var dir = new TempDir();
        // Two float32 values 1.5 and -2 followed by one int16 value 7.
        var data = new byte[10];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(0), 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -2f);
        BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(8), 7);
        WriteRaw(dir.File("h.safetensors"),
            "{\"__metadata__\":{\"k\":\"v\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"i\":{\"dtype\":\"I16\",\"shape\":[1,1],\"data_offsets\":[8,10]}}",
            data);
        using var file = SafetensorsFile.Open(dir.File("h.safetensors"));
        file.Metadata["k"].Should().Be("v");
        using var w = file.Load("w");
        w.data<float>().ToArray().Should().Equal(1.5f, -2f);
        using var i = file.Load("i", ScalarType.Int64);
        i.dtype.Should().Be(ScalarType.Int64);
        i.item<long>().Should().Be(7);
    }

    [Fact]
    public void Load_converts_dtype_and_LoadInto_fills_an_existing_parameter()
    {
        using var dir = new TempDir();
        using var w = randn(4, 5).to_type(ScalarType.BFloat16);
        SafetensorsWriter.Save(dir.File("w.safetensors"), new[] { ("w", w) });
        using var file = SafetensorsFile.Open(dir.File("w.safetensors"));
        using var asFloat = file.Load("w", ScalarType.Float32);
        asFloat.dtype.Should().Be(ScalarType.Float32);
        using var expected = w.to_type(ScalarType.Float32);
        asFloat.SameAs(expected).Should().BeTrue();

        using var param = new TorchSharp.Modules.Parameter(zeros(4, 5));
        file.LoadInto("w", param);
        param.SameAs(expected).Should().BeTrue();
        param.requires_grad.Should().BeTrue();

        using var bfParam = new TorchSharp.Modules.Parameter(zeros(4, 5, dtype: ScalarType.BFloat16));
        file.LoadInto("w", bfParam);
        bfParam.SameAs(w).Should().BeTrue();

        using var wrong = zeros(5, 4);
        var act = () => file.LoadInto("w", wrong);
        act.Should().Throw<CheckpointFormatException>().WithMessage("*'w'*[4, 5]*[5, 4]*");
    }

    [Fact]
    public void Writes_atomically_and_replaces_an_existing_file()
    {
        using var dir = new TempDir();
        using var a = ones(2);
        using var b = zeros(3);
        SafetensorsWriter.Save(dir.File("x.safetensors"), new[] { ("a", a) });
        SafetensorsWriter.Save(dir.File("x.safetensors"), new[] { ("b", b) });
        Directory.GetFiles(dir.Path).Select(Path.GetFileName).Should().Equal("x.safetensors");
        using var file = SafetensorsFile.Open(dir.File("x.safetensors"));
        file.Contains("a").Should().BeFalse();
        file.Contains("b").Should().BeTrue();
    }

    [Fact]
    public void Sharded_checkpoint_writes_index_and_reads_back()
    {
        using var dir = new TempDir();
        var tensors = Enumerable.Range(0, 5).Select(i => ($"t{i}", full(new long[] { 10 }, (float)i))).ToList();
        var written = SafetensorsWriter.SaveCheckpoint(dir.Path, tensors, maxShardBytes: 90);
        written.Should().Equal("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json");
        File.Exists(dir.File("model.safetensors")).Should().BeFalse();

        using var doc = JsonDocument.Parse(File.ReadAllText(dir.File("model.safetensors.index.json")));
        doc.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64().Should().Be(200);
        doc.RootElement.GetProperty("weight_map").GetProperty("t4").GetString().Should().Be("model-00003-of-00003.safetensors");

        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        ckpt.TensorNames.Should().Equal("t0", "t1", "t2", "t3", "t4");
        ckpt.Files.Should().HaveCount(3);
        using var t3 = ckpt.Load("t3");
        t3.SameAs(tensors[3].Item2).Should().BeTrue();

        // Saving again unsharded replaces the sharded layout.
        SafetensorsWriter.SaveCheckpoint(dir.Path, tensors).Should().Equal("model.safetensors");
        Directory.GetFiles(dir.Path).Select(Path.GetFileName).Should().Equal("model.safetensors");
        foreach (var (_, t) in tensors) t.Dispose();
    }

    // ---------- malformed files: every case gets the typed exception and a message naming the problem ----------

    private static SafetensorsFormatException OpenFails(string path)
    {
        var act = () => SafetensorsFile.Open(path).Dispose();
        var e = act.Should().Throw<SafetensorsFormatException>().Which;
        e.Message.Should().StartWith(path);
        e.FilePath.Should().Be(path);
        return e;
    }

    [Fact]
    public void Truncated_file_shorter_than_length_field()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("t.safetensors"), new byte[] { 1, 2, 3 });
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("truncated");
    }

    [Fact]
    public void Truncated_file_cut_in_the_data_region()
    {
        using var dir = new TempDir();
        using var t = ones(100);
        SafetensorsWriter.Save(dir.File("t.safetensors"), new[] { ("w", t) });
        var bytes = File.ReadAllBytes(dir.File("t.safetensors"));
        File.WriteAllBytes(dir.File("t.safetensors"), bytes[..^10]);
        var e = OpenFails(dir.File("t.safetensors"));
        e.Message.Should().Contain("'w'").And.Contain("past the end of the data region").And.Contain("truncated");
    }

    [Fact]
    public void Header_length_above_100_MB()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{}", Array.Empty<byte>(), lengthField: 200_000_000);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("header length 200000000 exceeds");
    }

    [Fact]
    public void Header_length_larger_than_file()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{}", Array.Empty<byte>(), lengthField: 5000);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("header length 5000 is larger than the file");
    }

    [Fact]
    public void Header_is_not_valid_json()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{\"w\": {\"dtype\": \"F32\",", Array.Empty<byte>());
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("not valid JSON");
    }

    [Fact]
    public void Header_is_not_an_object()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "[1, 2]  ", Array.Empty<byte>());
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("must be a JSON object");
    }

    [Fact]
    public void Unknown_dtype()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{\"w\":{\"dtype\":\"F8_E5M2\",\"shape\":[4],\"data_offsets\":[0,4]}}", new byte[4]);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("'w'").And.Contain("unknown or unsupported dtype 'F8_E5M2'");
    }

    [Fact]
    public void Offsets_past_end_of_data()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", new byte[16]);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("'w'").And.Contain("past the end of the data region (16 bytes)");
    }

    [Fact]
    public void Negative_or_reversed_offsets()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", new byte[16]);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("'w'").And.Contain("invalid data_offsets");
    }

    [Fact]
    public void Overlapping_tensors()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"),
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            new byte[12]);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("'a'").And.Contain("'b'").And.Contain("overlap");
    }

    [Fact]
    public void Shape_and_byte_length_disagree()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("t.safetensors"), "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", new byte[8]);
        OpenFails(dir.File("t.safetensors")).Message.Should().Contain("'w'").And.Contain("byte length 8 does not match shape [2, 3] x 2 bytes (BF16) = 12");
    }

    [Fact]
    public void Malformed_tensor_entries()
    {
        using var dir = new TempDir();
        WriteRaw(dir.File("a.safetensors"), "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
        OpenFails(dir.File("a.safetensors")).Message.Should().Contain("'w'").And.Contain("'dtype'");
        WriteRaw(dir.File("b.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4]);
        OpenFails(dir.File("b.safetensors")).Message.Should().Contain("'w'").And.Contain("non-negative");
        WriteRaw(dir.File("c.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[4]);
        OpenFails(dir.File("c.safetensors")).Message.Should().Contain("'w'").And.Contain("data_offsets");
        WriteRaw(dir.File("d.safetensors"), "{\"__metadata__\":{\"n\":3}}", Array.Empty<byte>());
        OpenFails(dir.File("d.safetensors")).Message.Should().Contain("__metadata__").And.Contain("'n'");
        WriteRaw(dir.File("e.safetensors"),
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        OpenFails(dir.File("e.safetensors")).Message.Should().Contain("'w' appears twice");
    }

    [Fact]
    public void Missing_shard_file_in_index()
    {
        using var dir = new TempDir();
        var tensors = Enumerable.Range(0, 3).Select(i => ($"t{i}", ones(10))).ToList();
        SafetensorsWriter.SaveCheckpoint(dir.Path, tensors, maxShardBytes: 40);
        File.Delete(dir.File("model-00002-of-00003.safetensors"));
        var act = () => SafetensorsCheckpoint.Open(dir.Path).Dispose();
        var e = act.Should().Throw<SafetensorsFormatException>().Which;
        e.Message.Should().Contain("model.safetensors.index.json").And.Contain("shard file 'model-00002-of-00003.safetensors'").And.Contain("missing");
        foreach (var (_, t) in tensors) t.Dispose();
    }

    [Fact]
    public void Index_maps_a_tensor_to_a_shard_without_it_or_is_invalid()
    {
        using var dir = new TempDir();
        using var t = ones(2);
        SafetensorsWriter.Save(dir.File("model-00001-of-00001.safetensors"), new[] { ("a", t) });
        File.WriteAllText(dir.File("model.safetensors.index.json"),
            "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a\":\"model-00001-of-00001.safetensors\",\"b\":\"model-00001-of-00001.safetensors\"}}");
        var act = () => SafetensorsCheckpoint.Open(dir.Path).Dispose();
        act.Should().Throw<SafetensorsFormatException>().WithMessage("*tensor 'b' is mapped to 'model-00001-of-00001.safetensors'*does not contain it*");

        File.WriteAllText(dir.File("model.safetensors.index.json"), "{\"weight_map\": [");
        act.Should().Throw<SafetensorsFormatException>().WithMessage("*index is not valid JSON*");

        File.WriteAllText(dir.File("model.safetensors.index.json"), "{\"weight_map\":{\"a\":\"../x.safetensors\"}}");
        act.Should().Throw<SafetensorsFormatException>().WithMessage("*invalid shard file '../x.safetensors'*");
    }

    [Fact]
    public void Folder_without_weights_names_the_expected_files()
    {
        using var dir = new TempDir();
        var act = () => SafetensorsCheckpoint.Open(dir.Path).Dispose();
        act.Should().Throw<FileNotFoundException>().WithMessage("*model.safetensors*model.safetensors.index.json*");
    }
}
