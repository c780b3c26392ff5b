using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepAlign.Models.Lora;

/// <summary>
/// A linear projection with a low-rank trainable update: y = x W^T + b + (alpha / r) * B(A(dropout(x))).
/// The base <c>weight</c> (and <c>bias</c>) keep their names and are frozen; <c>lora_A.weight</c> [r, in] starts
/// kaiming-uniform and <c>lora_B.weight</c> [out, r] starts at zero, so a fresh adapter leaves outputs unchanged.
/// The adapter is float32 whatever the base dtype (its input is cast up and its output cast back).
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter _weight;
    private readonly Parameter? _bias;
    private readonly Linear _a;
    private readonly Linear _b;

    /// <summary>Wraps a base projection given by its weight [out, in] and optional bias [out].</summary>
    /// <param name="weight">Base weight (registered under the name <c>weight</c> and frozen).</param>
    /// <param name="bias">Base bias, or null.</param>
    /// <param name="rank">Rank r.</param>
    /// <param name="alpha">lora_alpha.</param>
    /// <param name="dropout">Dropout on the adapter input.</param>
    /// <param name="generator">Random source of the A initialisation (null: torch's global generator).</param>
    public LoraLinear(Parameter weight, Parameter? bias, int rank, double alpha, double dropout, Generator? generator = null) : base("LoraLinear")
    {
        if (weight.dim() != 2) throw new ArgumentException($"A LoRA base weight must be 2-D, got [{string.Join(",", weight.shape)}].", nameof(weight));
        if (rank <= 0 || rank > Math.Min(weight.shape[0], weight.shape[1]))
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"Rank must be in 1..{Math.Min(weight.shape[0], weight.shape[1])} for a [{weight.shape[0]}, {weight.shape[1]}] projection.");
        _weight = weight;
        _bias = bias;
        _weight.requires_grad = false;
        if (_bias is not null) _bias.requires_grad = false;
        Rank = rank;
        Alpha = alpha;
        DropoutProbability = dropout;
        long inF = weight.shape[1], outF = weight.shape[0];
        _a = nn.Linear(inF, rank, hasBias: false, device: weight.device, dtype: ScalarType.Float32);
        _b = nn.Linear(rank, outF, hasBias: false, device: weight.device, dtype: ScalarType.Float32);
        using (no_grad())
        {
            double bound = 1.0 / Math.Sqrt(inF); // kaiming_uniform_(a = sqrt(5)) as in PEFT / nn.Linear
            using var u = rand(new long[] { rank, inF }, generator: generator, dtype: ScalarType.Float32);
            using var width = (2 * bound).ToScalar();
            using var offset = bound.ToScalar();
            _a.weight!.copy_(u.mul(width).sub_(offset));
            _b.weight!.zero_();
        }
        register_parameter("weight", _weight);
        if (_bias is not null) register_parameter("bias", _bias);
        register_module("lora_A", _a);
        register_module("lora_B", _b);
    }

    /// <summary>Rank r.</summary>
    public int Rank { get; }
    /// <summary>lora_alpha.</summary>
    public double Alpha { get; }
    /// <summary>Adapter input dropout.</summary>
    public double DropoutProbability { get; }
    /// <summary>alpha / r.</summary>
    public double Scaling => Alpha / Rank;
    /// <summary>
    /// When false the adapter is bypassed and the layer is its base projection (y = x W^T + b), as PEFT's
    /// <c>disable_adapter()</c>; <see cref="AdaptersDisabledModel"/> switches it around a reference forward. Default true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The frozen base weight [out, in].</summary>
    public Parameter BaseWeight => _weight;
    /// <summary>The frozen base bias, if any.</summary>
    public Parameter? BaseBias => _bias;
    /// <summary>A [r, in].</summary>
    public Parameter LoraA => _a.weight!;
    /// <summary>B [out, r].</summary>
    public Parameter LoraB => _b.weight!;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (!Enabled) return nn.functional.linear(input, _weight, _bias);
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(input, _weight, _bias);
        var x = input.dtype == ScalarType.Float32 ? input : input.to(ScalarType.Float32);
        if (training && DropoutProbability > 0) x = nn.functional.dropout(x, DropoutProbability, training: true);
        using var scaling = Scaling.ToScalar(); // explicit Scalars only (Runtime/Scalars.cs)
        var update = _b.forward(_a.forward(x)).mul(scaling);
        return y.add(update.dtype == y.dtype ? update : update.to(y.dtype), Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>W + (alpha / r) B A in the base dtype (computed in float32).</summary>
    public Tensor MergedWeight()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var scaling = Scaling.ToScalar();
        var delta = LoraB.matmul(LoraA).mul(scaling);
        return _weight.to(ScalarType.Float32).add(delta, Scalars.One).to(_weight.dtype).MoveToOuterDisposeScope();
    }
}
