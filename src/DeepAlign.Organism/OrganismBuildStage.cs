namespace DeepAlign.Organism;

/// <summary>A stage of the organism build.</summary>
public enum OrganismBuildStage
{
    /// <summary>Writing the tokenizer folder.</summary>
    Tokenizer,
    /// <summary>Pretraining the base model on <c>pretrain.jsonl</c>.</summary>
    Pretrain,
    /// <summary>Safety SFT of the aligned model on <c>align.jsonl</c>.</summary>
    Align,
    /// <summary>Writing the folders.</summary>
    Save,
    /// <summary>DPO of the aligned model against the SFT model (<see cref="OrganismRecipeKind.SftDpo"/>).</summary>
    Preference,
}
