namespace DeepAlign.Runtime;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, fully specified pseudo-random generator, the library's one source
/// of seeded randomness (world generation, data order, prefix lengths, sampling draws, attack seeds), used instead of
/// <see cref="System.Random"/> so every seeded result is identical on every runtime and machine.
/// </summary>
internal sealed class SplitMix64
{
    /// <summary>The golden-ratio increment of the state (2^64 / phi).</summary>
    public const ulong Gamma = 0x9E3779B97F4A7C15UL;

    private ulong _state;

    /// <summary>Starts the stream at <paramref name="seed"/>.</summary>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>The stateless SplitMix64 output function: <c>Mix(z)</c> is the first output of a stream started at <paramref name="z"/>.</summary>
    /// <param name="z">Any 64-bit value.</param>
    public static ulong Mix(ulong z)
    {
        z += Gamma;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// A stable hash of several integers (boost-style combine with the SplitMix64 multiplier), unlike
    /// <see cref="HashCode"/>, which is randomised per process. Used to derive independent seeds from (seed, stream, index).
    /// </summary>
    /// <param name="values">The integers, in order.</param>
    public static ulong Combine(params ReadOnlySpan<long> values)
    {
        ulong h = Gamma;
        foreach (var v in values)
        {
            h ^= (ulong)v + Gamma + (h << 6) + (h >> 2);
            h *= 0xBF58476D1CE4E5B9UL;
            h ^= h >> 31;
        }
        return h;
    }

    /// <summary>Next 64 uniformly distributed bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = Mix(_state);
        _state += Gamma;
        return result;
    }

    /// <summary>Uniform integer in [0, <paramref name="n"/>), unbiased (rejects the 2^64 mod n lowest values).</summary>
    /// <param name="n">Exclusive upper bound (positive).</param>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Upper bound must be positive.");
        ulong bound = (ulong)n;
        ulong threshold = (0UL - bound) % bound; // 2^64 mod n: [threshold, 2^64) holds a multiple of n values
        ulong x;
        do { x = NextUInt64(); } while (x < threshold);
        return (int)(x % bound);
    }

    /// <summary>Uniform integer in [<paramref name="min"/>, <paramref name="maxInclusive"/>].</summary>
    /// <param name="min">Smallest value.</param>
    /// <param name="maxInclusive">Largest value.</param>
    public int NextInt(int min, int maxInclusive) => min + NextInt(maxInclusive - min + 1);

    /// <summary>Uniform double in [0, 1) from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>One element chosen uniformly.</summary>
    /// <param name="items">A non-empty list.</param>
    public T Pick<T>(IReadOnlyList<T> items) => items[NextInt(items.Count)];

    /// <summary>In-place Fisher-Yates shuffle.</summary>
    /// <param name="items">The list.</param>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A derived, independent stream (for sub-generators whose draws must not shift others).</summary>
    public SplitMix64 Fork() => new(NextUInt64());
}
