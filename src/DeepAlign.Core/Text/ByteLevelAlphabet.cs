namespace DeepAlign.Text;

/// <summary>
/// The GPT-2 byte-to-unicode table used by byte-level BPE: every byte maps to one printable character
/// (printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 upwards, in byte order).
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = BuildByteToChar();
    public static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var d = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++) d[ByteToChar[b]] = (byte)b;
        return d;
    }

    /// <summary>Maps the UTF-8 bytes of <paramref name="text"/> to byte-level characters.</summary>
    public static string Encode(string text)
    {
        var byteCount = System.Text.Encoding.UTF8.GetByteCount(text);
        Span<byte> bytes = byteCount <= 512 ? stackalloc byte[byteCount] : new byte[byteCount];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return string.Create(byteCount, bytes.ToArray(), static (span, b) =>
        {
            for (var i = 0; i < b.Length; i++) span[i] = ByteToChar[b[i]];
        });
    }

    /// <summary><see cref="Encode"/> with alignment: every byte char maps to the range of the code point it encodes.</summary>
    public static AlignedText EncodeAligned(AlignedText text)
    {
        var s = text.Text;
        var b = new AlignedText.Builder(s.Length * 2, text.Anchor);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < s.Length;)
        {
            // A lone surrogate encodes as U+FFFD, as Encoding.UTF8 does.
            var status = System.Text.Rune.DecodeFromUtf16(s.AsSpan(i), out var rune, out var consumed);
            if (status != System.Buffers.OperationStatus.Done) { rune = System.Text.Rune.ReplacementChar; consumed = 1; }
            var n = rune.EncodeToUtf8(utf8);
            var end = text.Ends[i + consumed - 1];
            for (var k = 0; k < n; k++) b.Mapped(ByteToChar[utf8[k]], text.Starts[i], end);
            i += consumed;
        }
        return b.Build();
    }
}
