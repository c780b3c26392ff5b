using DeepAlign.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepAlign.Models.Quantization;

/// <summary>
/// A linear projection whose small-batch CPU calls run through <see cref="LinearKernels"/>: either over the model's
/// own float32/bfloat16 weight (<see cref="WeightFormat.Dense"/>, registered as <c>weight</c> so checkpoint names stay)
/// or over an int8 copy with per-output-channel scales (<see cref="WeightFormat.Int8"/>).
/// </summary>
internal sealed unsafe class KernelLinear : nn.Module<Tensor, Tensor>
{
    private const long DequantBlockElements = 1L << 22;

    private readonly Tensor _weight;            // dense: the model's weight; int8: [out, in] int8
    private readonly Tensor? _scales;           // int8: [out] float32
    private readonly Tensor? _bias;             // as given (model dtype)
    private readonly Tensor? _bias32;           // float32 copy for the kernels
    private readonly KernelWeights _kind;
    private readonly int _maxKernelRows;
    private readonly long _in, _out;
    private readonly bool _ownsWeight;

    private KernelLinear(Tensor weight, Tensor? scales, Tensor? bias, KernelWeights kind, int maxKernelRows, bool register, bool ownsWeight) : base("KernelLinear")
    {
        _weight = weight;
        _scales = scales;
        _bias = bias;
        _kind = kind;
        _maxKernelRows = maxKernelRows;
        _out = weight.shape[0];
        _in = weight.shape[1];
        _ownsWeight = ownsWeight;
        if (bias is not null) _bias32 = bias.detach().to_type(ScalarType.Float32).contiguous().DetachFromDisposeScope();
        if (register && weight is Parameter pw)
        {
            register_parameter("weight", pw);
            if (bias is Parameter pb) register_parameter("bias", pb);
        }
    }

    /// <summary>Kernels over the model's own weight (not copied). <paramref name="register"/>: register weight/bias as
    /// this module's parameters (a projection swapped into the tree); false for a head that shares the embedding.</summary>
    public static KernelLinear Dense(Tensor weight, Tensor? bias, int maxKernelRows, bool register) =>
        new(weight, null, bias, DenseKind(weight), maxKernelRows, register, ownsWeight: false);

    /// <summary>The kernels' format for a dense weight; throws when the kernels cannot read it (not float32 or bfloat16,
    /// or not contiguous). <see cref="ModelQuantization.Quantize"/> checks every weight with it before changing any.</summary>
    public static KernelWeights DenseKind(Tensor weight)
    {
        var kind = weight.dtype switch
        {
            ScalarType.Float32 => KernelWeights.Float32,
            ScalarType.BFloat16 => KernelWeights.BFloat16,
            _ => throw new NotSupportedException($"The dense kernels read float32 or bfloat16 weights, not {weight.dtype}."),
        };
        if (!weight.is_contiguous()) throw new ArgumentException("The weight must be contiguous.", nameof(weight));
        return kind;
    }

    // Cached: an implicit Scalar can be finalized while native code still reads it (docs/troubleshooting.md).
    private static readonly Scalar ByteOffset = 128L.ToScalar();

    /// <summary>An int8 copy of <paramref name="weight"/> with per-output-channel scales (max |w| / 127);
    /// <paramref name="activations8"/>: store the weights offset (<c>q + 128</c>, bytes) for the W8A8 kernels
    /// (<see cref="WeightFormat.W8A8"/>). <paramref name="into"/>: a contiguous <c>[out, in]</c> int8 (byte for W8A8)
    /// tensor to write the copy into, e.g. a view of a <see cref="WeightArena"/>; null allocates one.</summary>
    public static KernelLinear Int8(Tensor weight, Tensor? bias, int maxKernelRows, bool activations8 = false, Tensor? into = null)
    {
        var (q, scales) = QuantizeRows(weight, into, offset: activations8);
        return new KernelLinear(q, scales, bias, activations8 ? KernelWeights.Int8W8A8 : KernelWeights.Int8, maxKernelRows, register: false, ownsWeight: true);
    }

    /// <summary>Row-wise symmetric int8 quantisation, computed in float32 in blocks of rows, into <paramref name="into"/>
    /// when given. <paramref name="offset"/>: store <c>q + 128</c> as bytes (W8A8).</summary>
    internal static (Tensor Q, Tensor Scales) QuantizeRows(Tensor weight, Tensor? into = null, bool offset = false)
    {
        using var noGrad = no_grad();
        long rows = weight.shape[0], cols = weight.shape[1];
        var storage = offset ? ScalarType.Byte : ScalarType.Int8;
        if (into is not null && (into.dtype != storage || into.dim() != 2 || into.shape[0] != rows || into.shape[1] != cols || !into.is_contiguous()))
            throw new ArgumentException($"The destination must be a contiguous [{rows}, {cols}] {storage} tensor.", nameof(into));
        var q = into ?? empty(new long[] { rows, cols }, storage, weight.device);
        var scales = empty(rows, ScalarType.Float32, weight.device);
        long block = Math.Max(1, DequantBlockElements / Math.Max(1, cols));
        using var inv127 = (1.0 / 127).ToScalar();
        using var min = (-127.0).ToScalar();
        using var max = 127.0.ToScalar();
        using var tiny = 1e-30.ToScalar();
        for (long r0 = 0; r0 < rows; r0 += block)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(block, rows - r0);
            var w = weight.narrow(0, r0, n).to_type(ScalarType.Float32);
            var scale = w.abs().amax(new long[] { 1 }).mul(inv127).clamp_min(tiny);
            var rounded = w.div(scale.unsqueeze(1)).round().clamp(min, max);
            // Offset bytes: -127..127 + 128 is exact in float32 and fits a byte.
            if (offset) rounded = rounded.add(ByteOffset, Scalars.One);
            q.narrow(0, r0, n).copy_(rounded.to_type(storage));
            scales.narrow(0, r0, n).copy_(scale);
        }
        return (q.DetachFromDisposeScope(), scales.DetachFromDisposeScope());
    }

    /// <summary>Bytes of weights this projection reads per call.</summary>
    public long WeightBytes => _weight.NumberOfElements * _weight.ElementSize + (_scales?.NumberOfElements ?? 0) * 4;

    public override Tensor forward(Tensor x)
    {
        long rows = x.NumberOfElements / _in;
        bool needsGrad = is_grad_enabled() && (x.requires_grad || _weight.requires_grad || (_bias?.requires_grad ?? false));
        if (rows <= _maxKernelRows && !needsGrad && x.device_type == DeviceType.CPU && TensorData.Available
            && x.dtype is ScalarType.Float32 or ScalarType.BFloat16)
            return KernelForward(x, rows);
        return _kind is KernelWeights.Int8 or KernelWeights.Int8W8A8 ? DequantForward(x) : nn.functional.linear(x, _weight, _bias);
    }

    /// <summary>When true, <see cref="ProfileTicks"/> accumulates the Stopwatch ticks spent in kernel projections (a
    /// benchmark hook: docs/performance.md, "Where a decode step goes").</summary>
    internal static bool Profiling { get; set; }

    /// <summary>Stopwatch ticks spent inside kernel projections while <see cref="Profiling"/> was on (whole
    /// <c>KernelForward</c>: output allocation, pointer look-ups and the kernel).</summary>
    internal static long ProfileTicks { get; set; }

    private Tensor KernelForward(Tensor x, long rows)
    {
        long start = Profiling ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        // Few libtorch calls per projection: decoding runs ~100 of these per token.
        var shape = x.shape;
        shape[^1] = _out;
        Tensor? copy = x.is_contiguous() ? null : x.contiguous();
        var src = copy ?? x;
        var y = empty(shape, x.dtype, x.device);
        void* scales = _scales is null ? null : TensorData.Pointer(_scales);
        void* bias = _bias32 is null ? null : TensorData.Pointer(_bias32);
        int threads = get_num_threads();
        if (x.dtype == ScalarType.Float32)
            LinearKernels.Run(_kind, TensorData.Pointer(_weight), (float*)scales, (float*)bias, (float*)TensorData.Pointer(src), (float*)TensorData.Pointer(y),
                (int)rows, (int)_in, (int)_out, threads);
        else
            LinearKernels.RunBFloat16Activations(_kind, TensorData.Pointer(_weight), (float*)scales, (float*)bias, (ushort*)TensorData.Pointer(src),
                (ushort*)TensorData.Pointer(y), (int)rows, (int)_in, (int)_out, threads);
        copy?.Dispose();
        if (Profiling) ProfileTicks += System.Diagnostics.Stopwatch.GetTimestamp() - start;
        return y;
    }

    /// <summary>Input features.</summary>
    public int InFeatures => (int)_in;

    /// <summary>Output features.</summary>
    public int OutFeatures => (int)_out;

    /// <summary>Rows up to which <see cref="forward"/> uses the kernels.</summary>
    public int MaxKernelRows => _maxKernelRows;

    /// <summary>The tensors the kernels read (weight, scales, float32 bias), e.g. to check <c>requires_grad</c>.</summary>
    public Tensor Weight => _weight;

    /// <summary><c>y = x W^T (+ bias)</c> for <paramref name="rows"/> float32 rows on raw memory (<c>[rows, in]</c> to
    /// <c>[rows, out]</c>), whatever the weight format: the fused decoding step's entry (<see cref="KernelDecoder"/>).</summary>
    public void RunFloat32(float* x, float* y, int rows, int threads)
    {
        long start = Profiling ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        void* scales = _scales is null ? null : TensorData.Pointer(_scales);
        void* bias = _bias32 is null ? null : TensorData.Pointer(_bias32);
        LinearKernels.Run(_kind, TensorData.Pointer(_weight), (float*)scales, (float*)bias, x, y, rows, (int)_in, (int)_out, threads);
        if (Profiling) ProfileTicks += System.Diagnostics.Stopwatch.GetTimestamp() - start;
    }

    /// <summary>Larger batches (prefill) and other devices: dequantise blocks of rows into the activation dtype and matmul.</summary>
    private Tensor DequantForward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long block = Math.Max(1, DequantBlockElements / _in);
        var parts = new List<Tensor>();
        for (long o0 = 0; o0 < _out; o0 += block)
        {
            long n = Math.Min(block, _out - o0);
            var w = _weight.narrow(0, o0, n).to_type(x.dtype);
            if (_kind == KernelWeights.Int8W8A8) w = w.sub_(ByteOffset); // offset bytes back to int8 values (exact in bf16 too)
            w = w.mul(_scales!.narrow(0, o0, n).unsqueeze(1).to_type(x.dtype));
            parts.Add(nn.functional.linear(x, w, _bias?.narrow(0, o0, n)));
        }
        var y = parts.Count == 1 ? parts[0] : cat(parts, -1);
        return y.MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_ownsWeight) { _weight.Dispose(); _scales?.Dispose(); }
            _bias32?.Dispose();
        }
        base.Dispose(disposing);
    }
}
