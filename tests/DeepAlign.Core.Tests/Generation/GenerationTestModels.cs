using DeepAlign.Testing;

namespace DeepAlign.Tests.Generation;

/// <summary>Table models shared by the generation tests.</summary>
internal static class GenerationTestModels
{
    /// <summary>Deterministic pseudo-random logits in [0, 4) for a context (FNV-1a hash seeding System.Random), no exact ties in practice.</summary>
    public static float[] HashLogits(IReadOnlyList<long> context, int vocab)
    {
        ulong h = 1469598103934665603UL;
        foreach (var t in context) h = (h ^ (ulong)t) * 1099511628211UL;
        var rng = new Random((int)(h ^ (h >> 32)));
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++) logits[i] = (float)(rng.NextDouble() * 4);
        return logits;
    }

    /// <summary>A model whose every context has its own pseudo-random distribution (high entropy).</summary>
    public static TableCausalLanguageModel Random(int vocab = 7) =>
        TableCausalLanguageModel.CreateBuilder(vocab).Otherwise(c => HashLogits(c, vocab)).Build();

    public static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
