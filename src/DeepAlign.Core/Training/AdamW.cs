using DeepAlign.Checkpoints;
using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepAlign.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter) with PyTorch's update order (torch.optim.AdamW, non-fused):
/// p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
/// Written here rather than taken from TorchSharp so its state (per-parameter moments and the step count) is
/// plain named tensors that a checkpoint can save and restore exactly. Moments are kept in float32.
/// </summary>
internal sealed class AdamW : IDisposable
{
    internal sealed record Entry(string Name, Parameter Parameter, bool Decay);

    private readonly List<Entry> _entries;
    private readonly Dictionary<string, (Tensor M, Tensor V)> _state = new(StringComparer.Ordinal);

    public AdamW(IEnumerable<(string Name, Parameter Parameter)> parameters, double beta1, double beta2, double eps, double weightDecay)
    {
        _entries = parameters.Select(p => new Entry(p.Name, p.Parameter, UsesDecay(p.Name, p.Parameter))).ToList();
        if (_entries.Count == 0) throw new InvalidOperationException("The model has no trainable parameters (did LoRA freeze everything, or were no target projections found?).");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }

    /// <summary>Optimiser steps taken (t in the bias corrections).</summary>
    public long StepCount { get; private set; }

    public IReadOnlyList<Entry> Entries => _entries;

    /// <summary>
    /// No decay on biases, norm weights or any parameter with fewer than two dimensions (the usual rule of
    /// Hugging Face and nanoGPT); matrices, embeddings and LoRA factors decay.
    /// </summary>
    internal static bool UsesDecay(string name, Parameter p) =>
        p.dim() >= 2 && !name.EndsWith(".bias", StringComparison.Ordinal) && !name.Contains("norm", StringComparison.OrdinalIgnoreCase);

    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();
        foreach (var e in _entries)
        {
            var g = e.Parameter.grad;
            if (g is null) continue;
            g.detach_();
            g.zero_();
        }
    }

    /// <summary>Global L2 norm of all gradients; when <paramref name="maxNorm"/> is set, scales them by min(1, max / (norm + 1e-6)) like PyTorch.</summary>
    public double ClipGradients(double? maxNorm)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor? sq = null;
        foreach (var e in _entries)
        {
            var g = e.Parameter.grad;
            if (g is null) continue;
            var n = g.to(ScalarType.Float32).pow(Scalars.Two).sum();
            sq = sq is null ? n : sq.add(n, Scalars.One); // explicit Scalars only (Runtime/Scalars.cs)
        }
        if (sq is null) return 0.0;
        double total = Math.Sqrt(sq.item<float>());
        if (maxNorm is double max && double.IsFinite(total))
        {
            double coef = max / (total + 1e-6);
            using var coefScalar = coef.ToScalar();
            if (coef < 1.0)
                foreach (var e in _entries) e.Parameter.grad?.mul_(coefScalar);
        }
        return total;
    }

    public void Step(double lr)
    {
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, StepCount));
        double stepSize = lr / bc1;
        using var _ = no_grad();
        // Explicit Scalars only (Runtime/Scalars.cs), made once per step with the values the update used before.
        using var decay = (1 - lr * WeightDecay).ToScalar();
        using var beta1 = Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var bc2SqrtScalar = bc2Sqrt.ToScalar();
        using var eps = Eps.ToScalar();
        using var negativeStepSize = (-stepSize).ToScalar();
        foreach (var e in _entries)
        {
            using var scope = NewDisposeScope();
            var p = e.Parameter;
            var g = p.grad;
            if (g is null) continue;
            if (!_state.TryGetValue(e.Name, out var st))
            {
                st = (zeros_like(p, dtype: ScalarType.Float32).DetachFromDisposeScope(), zeros_like(p, dtype: ScalarType.Float32).DetachFromDisposeScope());
                _state[e.Name] = st;
            }
            var g32 = g.dtype == ScalarType.Float32 ? g : g.to(ScalarType.Float32);
            if (e.Decay && WeightDecay != 0) p.mul_(decay);
            st.M.mul_(beta1).add_(g32, alpha: oneMinusBeta1);
            st.V.mul_(beta2).addcmul_(g32, g32, value: oneMinusBeta2);
            var denom = st.V.sqrt().div_(bc2SqrtScalar).add_(eps, Scalars.One);
            if (p.dtype == ScalarType.Float32)
                p.addcdiv_(st.M, denom, value: negativeStepSize);
            else
                p.add_(st.M.div(denom).mul(negativeStepSize).to(p.dtype), Scalars.One);
        }
    }

    /// <summary>The moments as named tensors (<c>exp_avg.NAME</c>, <c>exp_avg_sq.NAME</c>), not copies.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateTensors()
    {
        foreach (var (name, st) in _state)
        {
            yield return ("exp_avg." + name, st.M);
            yield return ("exp_avg_sq." + name, st.V);
        }
    }

    /// <summary>
    /// Replaces the state with saved moments and step count, reading each tensor on demand from
    /// <paramref name="file"/> (so peak memory is the state itself); throws naming a parameter whose moments are
    /// missing or misshapen, or a stored tensor that matches no parameter.
    /// </summary>
    public void LoadState(SafetensorsFile file, long stepCount)
    {
        DisposeState();
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in _entries)
        {
            string mName = "exp_avg." + e.Name, vName = "exp_avg_sq." + e.Name;
            known.Add(mName);
            known.Add(vName);
            bool hasM = file.Contains(mName), hasV = file.Contains(vName);
            if (!hasM && !hasV) continue; // never stepped (no gradient yet)
            if (!hasM || !hasV) throw new InvalidDataException($"{file.Path}: optimiser state of '{e.Name}' is incomplete.");
            foreach (var n in new[] { mName, vName })
                if (!file.GetInfo(n).Shape.SequenceEqual(e.Parameter.shape))
                    throw new InvalidDataException($"{file.Path}: '{n}' has shape [{string.Join(",", file.GetInfo(n).Shape)}] but the parameter has [{string.Join(",", e.Parameter.shape)}].");
            var m = file.Load(mName, ScalarType.Float32, e.Parameter.device).DetachFromDisposeScope();
            var v = file.Load(vName, ScalarType.Float32, e.Parameter.device).DetachFromDisposeScope();
            _state[e.Name] = (m, v);
        }
        var extra = file.Tensors.Select(t => t.Name).FirstOrDefault(k => !known.Contains(k));
        if (extra is not null) throw new InvalidDataException($"{file.Path}: optimiser state has '{extra}', which matches no trainable parameter.");
        StepCount = stepCount;
    }

    private void DisposeState()
    {
        foreach (var (m, v) in _state.Values) { m.Dispose(); v.Dispose(); }
        _state.Clear();
    }

    public void Dispose() => DisposeState();
}
