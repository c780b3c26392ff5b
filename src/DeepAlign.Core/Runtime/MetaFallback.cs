using TorchSharp;
using static TorchSharp.torch;

namespace DeepAlign.Runtime;

/// <summary>
/// Stand-ins for the few operators the library uses that libtorch's C++ build cannot run on the <c>meta</c> device
/// (PyTorch registers their meta kernels in Python, <c>torch/_meta_registrations.py</c>, which TorchSharp does not
/// load). On every other device each helper is exactly the operator it names; on <c>meta</c>, where tensors have
/// shapes, dtypes, devices and an autograd graph but no values, it checks that its inputs share one device (as the
/// CUDA kernel does) and returns a tensor of the operator's shape, dtype and device built from ops that do have meta
/// kernels, differentiable like the operator. The meta-device tests (tests/.../Runtime/MetaDeviceTests.cs) use this
/// to run forward, training and scoring with no data, so a tensor the library creates on the wrong device fails there.
/// </summary>
internal static class MetaFallback
{
    /// <summary>Whether <paramref name="tensor"/> lives on the shape-only <c>meta</c> device.</summary>
    public static bool IsMeta(Tensor tensor) => tensor.device_type == DeviceType.META;

    /// <summary>
    /// Throws as a CUDA kernel does when two inputs live on different devices. Zero-dimensional CPU tensors are
    /// accepted next to any device (libtorch treats them as scalars everywhere).
    /// </summary>
    /// <param name="operation">Operator name for the message.</param>
    /// <param name="tensors">The inputs (nulls are skipped).</param>
    /// <exception cref="InvalidOperationException">Two inputs are on different devices.</exception>
    public static void RequireSameDevice(string operation, params Tensor?[] tensors)
    {
        Device? first = null;
        foreach (var t in tensors)
        {
            if (t is null || (t.dim() == 0 && t.device_type == DeviceType.CPU)) continue;
            var device = t.device;
            if (first is null) { first = device; continue; }
            if (device.type != first.type || device.index != first.index)
                throw new InvalidOperationException(
                    $"{operation}: expected all tensors to be on the same device, but found at least two devices, {first} and {device}.");
        }
    }

    /// <summary><c>input.index_select(dim, index)</c>; on meta, the same result shape through <c>gather</c>.</summary>
    /// <param name="input">The tensor to select from.</param>
    /// <param name="dim">Dimension to select along.</param>
    /// <param name="index">1-D int64 indices.</param>
    public static Tensor IndexSelect(Tensor input, long dim, Tensor index)
    {
        if (!IsMeta(input) && !IsMeta(index)) return input.index_select(dim, index);
        RequireSameDevice("index_select", input, index);
        if (index.dim() != 1) throw new ArgumentException($"index_select needs a 1-D index, got {index.dim()}-D.", nameof(index));
        long d = dim < 0 ? dim + input.dim() : dim;
        using var scope = NewDisposeScope();
        var viewShape = Enumerable.Repeat(1L, (int)input.dim()).ToArray();
        viewShape[d] = index.shape[0];
        var outShape = input.shape.ToArray();
        outShape[d] = index.shape[0];
        var expanded = index.view(viewShape).expand(outShape);
        return input.gather(d, expanded).MoveToOuterDisposeScope();
    }

    /// <summary><c>where(condition, x, y)</c>; on meta, a broadcast of the same shape and promoted dtype (values do not exist there).</summary>
    /// <param name="condition">Bool condition.</param>
    /// <param name="x">Value where the condition holds.</param>
    /// <param name="y">Value elsewhere.</param>
    public static Tensor Where(Tensor condition, Tensor x, Tensor y)
    {
        if (!IsMeta(condition) && !IsMeta(x) && !IsMeta(y)) return where(condition, x, y);
        RequireSameDevice("where", condition, x, y);
        using var scope = NewDisposeScope();
        return x.mul(condition).add(y.mul(condition.bitwise_not()), Scalars.One).MoveToOuterDisposeScope();
    }
}
