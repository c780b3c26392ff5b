using DeepAlign.Generation;
using DeepAlign.Models;
using DeepAlign.Organism;
using DeepAlign.Text;
using TorchSharp;

namespace DeepAlign.Tests.Hosting;

/// <summary>
/// The shipped pinned organism pair (real HF folders: Llama weights, WordLevel tokenizer.json, ChatML chat template),
/// loaded once per test class, plus a few held-out prompts of its world.
/// </summary>
public sealed class PinnedPairFixture : IDisposable
{
    public static readonly string PinnedDirectory =
        Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "Fixtures", "organism", "pinned"), "organism-*").Single();

    public PinnedPairFixture()
    {
        torch.set_num_threads(1);
        AlignedDirectory = Path.Combine(PinnedDirectory, "aligned");
        BaseDirectory = Path.Combine(PinnedDirectory, "base");
        Aligned = CausalLanguageModel.FromPretrained(AlignedDirectory, torch.CPU);
        Base = CausalLanguageModel.FromPretrained(BaseDirectory, torch.CPU);
        Tokenizer = HfTokenizer.FromPretrained(AlignedDirectory);
        Template = ChatTemplate.For(Tokenizer);
        var world = OrganismWorld.Generate();
        Benign = world.HeldoutBenign.Where(i => i.System is null && i.Messages is null).Take(4).Select(i => i.UserPrompt).ToArray();
        Harmful = world.HeldoutHarmful.Where(i => i.System is null && i.Messages is null).Take(2).Select(i => i.UserPrompt).ToArray();
    }

    public string AlignedDirectory { get; }
    public string BaseDirectory { get; }
    public ICausalLanguageModel Aligned { get; }
    public ICausalLanguageModel Base { get; }
    public HfTokenizer Tokenizer { get; }
    public ChatTemplate Template { get; }

    /// <summary>Held-out benign prompts (single user turn).</summary>
    public IReadOnlyList<string> Benign { get; }

    /// <summary>Held-out harmful prompts (single user turn).</summary>
    public IReadOnlyList<string> Harmful { get; }

    /// <summary>ChatML written by hand (the pinned tokenizer_config's template), independent of the Jinja renderer.</summary>
    public static string ChatMl(params (string Role, string Content)[] messages) =>
        string.Concat(messages.Select(m => $"<|im_start|>{m.Role}\n{m.Content}<|im_end|>\n")) + "<|im_start|>assistant\n";

    public long[] Ids(string text) => Tokenizer.Encode(text).Select(i => (long)i).ToArray();

    /// <summary>The reference: the plain <see cref="Generator"/> over the aligned model, greedy unless told otherwise.</summary>
    public GeneratedSequence Reference(GenerationRequest request, GenerationOptions? options = null)
    {
        using var generator = new Generator(Aligned);
        return generator.Generate(new[] { request }, options ?? new GenerationOptions { MaxNewTokens = 256 })[0];
    }

    public string Decode(IEnumerable<long> ids) => Tokenizer.Decode(ids.Select(i => (int)i), skipSpecialTokens: true);

    public void Dispose()
    {
        Aligned.Dispose();
        Base.Dispose();
    }
}
