namespace DeepAlign.Models.Lora;

/// <summary>
/// LoRA settings (Hu et al. 2021, PEFT semantics). Defaults are docs/method.md section 3's: rank 16, lora_alpha 32,
/// dropout 0.05 on the q, k, v, o, gate, up and down projections.
/// </summary>
public sealed record LoraOptions
{
    /// <summary>The default target projections.</summary>
    public static readonly IReadOnlyList<string> DefaultTargets = new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };

    /// <summary>Rank r of the update B A. Default 16.</summary>
    public int Rank { get; init; } = 16;

    /// <summary>lora_alpha; the update is scaled by lora_alpha / r (PEFT). Default 32.</summary>
    public double Alpha { get; init; } = 32;

    /// <summary>Dropout on the adapter's input (training mode only). Default 0.05.</summary>
    public double Dropout { get; init; } = 0.05;

    /// <summary>Projection names to wrap: a layer is a target when the last segment of its path equals one of these. Default <see cref="DefaultTargets"/>.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = DefaultTargets;

    /// <summary>Seed of the A initialisation (kaiming-uniform, a = sqrt(5), as PEFT: U(-1/sqrt(in), 1/sqrt(in))). Default 0.</summary>
    public int InitSeed { get; init; }

    /// <summary>The update's scale, lora_alpha / r.</summary>
    public double Scaling => Alpha / Rank;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"LoraOptions.Rank = {Rank}: must be positive.", nameof(Rank));
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentException($"LoraOptions.Alpha = {Alpha}: must be positive and finite.", nameof(Alpha));
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoraOptions.Dropout = {Dropout}: must be in [0, 1).", nameof(Dropout));
        if (TargetModules is null || TargetModules.Count == 0) throw new ArgumentException("LoraOptions.TargetModules: at least one target projection is needed.", nameof(TargetModules));
    }
}
