namespace DeepAlign.Organism.Experiment;

/// <summary>How many rows of the alpha = 0 check produced identical ids, per decoding mode.</summary>
/// <param name="Rows">Rows checked.</param>
/// <param name="GreedySame">Rows identical under greedy decoding.</param>
/// <param name="SampledSame">Rows identical under the attacks' sampling settings and seeds.</param>
public sealed record AlphaZeroInvariantResult(int Rows, int GreedySame, int SampledSame)
{
    /// <summary>Whether every row matched in both modes.</summary>
    public bool Holds => GreedySame == Rows && SampledSame == Rows;
}
