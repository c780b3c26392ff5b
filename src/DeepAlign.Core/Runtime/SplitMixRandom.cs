namespace DeepAlign.Runtime;

/// <summary>
/// A <see cref="Random"/> over <see cref="SplitMix64"/>, for APIs that take a <see cref="Random"/> (the training data
/// pipeline's seeded draws). The seeded <see cref="Random(int)"/> (Knuth's subtractive generator) gives visibly
/// correlated first samples for different seeds, which matters when a fresh generator is seeded per draw (e.g. one
/// K_pre per example).
/// </summary>
internal sealed class SplitMixRandom : Random
{
    private readonly SplitMix64 _bits;

    public SplitMixRandom(long seed) => _bits = new SplitMix64((ulong)seed ^ 0x6A09E667F3BCC909UL);

    protected override double Sample() => _bits.NextDouble();

    public override double NextDouble() => Sample();

    public override int Next() => (int)(_bits.NextUInt64() >> 33);

    public override int Next(int maxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxValue);
        return maxValue == 0 ? 0 : (int)((_bits.NextUInt64() >> 32) * (ulong)maxValue >> 32);
    }

    public override int Next(int minValue, int maxValue)
    {
        if (minValue > maxValue) throw new ArgumentOutOfRangeException(nameof(minValue));
        return minValue + (int)(((_bits.NextUInt64() >> 32) * (ulong)((long)maxValue - minValue)) >> 32);
    }

    public override long NextInt64() => (long)(_bits.NextUInt64() >> 1);

    public override void NextBytes(byte[] buffer) => NextBytes(buffer.AsSpan());

    public override void NextBytes(Span<byte> buffer)
    {
        for (int i = 0; i < buffer.Length; i++) buffer[i] = (byte)(_bits.NextUInt64() >> 56);
    }
}
