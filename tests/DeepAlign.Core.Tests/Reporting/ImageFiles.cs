using System.Buffers.Binary;
using System.Xml.Linq;
using FluentAssertions;

namespace DeepAlign.Tests.Reporting;

/// <summary>Checks that plot files are well-formed images of the expected size.</summary>
internal static class ImageFiles
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>PNG signature, an IHDR chunk first with the given size, an IEND chunk last.</summary>
    public static void ShouldBePng(string path, int width, int height)
    {
        var bytes = File.ReadAllBytes(path);
        bytes.Length.Should().BeGreaterThan(1000, path);
        bytes.Take(8).Should().Equal(PngSignature, path);
        BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8)).Should().Be(13, "the IHDR chunk has 13 bytes");
        System.Text.Encoding.ASCII.GetString(bytes, 12, 4).Should().Be("IHDR");
        BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)).Should().Be(width, path);
        BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)).Should().Be(height, path);
        System.Text.Encoding.ASCII.GetString(bytes, bytes.Length - 8, 4).Should().Be("IEND", path);
    }

    /// <summary>Well-formed XML whose root is an SVG element with the given size and some drawn content.</summary>
    public static void ShouldBeSvg(string path, int width, int height)
    {
        var doc = XDocument.Load(path);
        var root = doc.Root!;
        root.Name.LocalName.Should().Be("svg", path);
        root.Name.NamespaceName.Should().Be("http://www.w3.org/2000/svg", path);
        ((string?)root.Attribute("width"))!.TrimEnd('p', 'x').Should().Be(width.ToString(System.Globalization.CultureInfo.InvariantCulture), path);
        ((string?)root.Attribute("height"))!.TrimEnd('p', 'x').Should().Be(height.ToString(System.Globalization.CultureInfo.InvariantCulture), path);
        root.Descendants().Count().Should().BeGreaterThan(10, path);
    }
}
