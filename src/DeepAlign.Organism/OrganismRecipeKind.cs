namespace DeepAlign.Organism;

/// <summary>How the organism's aligned model is made from the base (<see cref="OrganismRecipe.Kind"/>).</summary>
public enum OrganismRecipeKind
{
    /// <summary>Safety SFT only (refusals for harmful prompts plus benign anchors): the v1 recipe, kept for comparison (<c>--recipe sft</c>).</summary>
    Sft,
    /// <summary>Safety SFT, then DPO against the SFT model as reference on (harmful prompt, refusal, harmful answer) and
    /// (benign prompt, correct answer, corrupted answer) pairs: the standard two-stage recipe (<c>--recipe sft+dpo</c>, the default).</summary>
    SftDpo,
}
