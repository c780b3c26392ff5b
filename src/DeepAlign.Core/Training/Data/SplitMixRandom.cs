namespace DeepAlign.Training.Data;

/// <summary>
/// A <see cref="Random"/> driven by SplitMix64, used for every seeded draw of the training pipeline. The seeded
/// <see cref="Random(int)"/> (Knuth's subtractive generator) gives visibly correlated first samples for different
/// seeds, which matters when a fresh generator is seeded per draw (e.g. one K_pre per example).
/// </summary>
internal sealed class SplitMixRandom : Random
{
    private ulong _state;

    public SplitMixRandom(long seed) => _state = (ulong)seed ^ 0x6A09E667F3BCC909UL;

    private ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    protected override double Sample() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public override double NextDouble() => Sample();

    public override int Next() => (int)(NextUInt64() >> 33);

    public override int Next(int maxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxValue);
        return maxValue == 0 ? 0 : (int)((NextUInt64() >> 32) * (ulong)maxValue >> 32);
    }

    public override int Next(int minValue, int maxValue)
    {
        if (minValue > maxValue) throw new ArgumentOutOfRangeException(nameof(minValue));
        return minValue + (int)(((NextUInt64() >> 32) * (ulong)((long)maxValue - minValue)) >> 32);
    }

    public override long NextInt64() => (long)(NextUInt64() >> 1);

    public override void NextBytes(byte[] buffer) => NextBytes(buffer.AsSpan());

    public override void NextBytes(Span<byte> buffer)
    {
        for (int i = 0; i < buffer.Length; i++) buffer[i] = (byte)(NextUInt64() >> 56);
    }
}
