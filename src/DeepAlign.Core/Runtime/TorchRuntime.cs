using TorchSharp;

namespace DeepAlign.Runtime;

/// <summary>Chooses devices and dtypes by one documented rule and sets up libtorch threading.</summary>
public static class TorchRuntime
{
    /// <summary>
    /// Resolves the device to run on: an explicit <paramref name="requested"/> value ("cpu", "cuda", "cuda:1")
    /// wins; otherwise CUDA when a CUDA backend is loaded and a GPU is visible, else CPU.
    /// </summary>
    /// <param name="requested">Device string, or null/empty for automatic selection.</param>
    /// <returns>The device to place tensors and modules on.</returns>
    /// <exception cref="ArgumentException">The string is not a device name TorchSharp understands.</exception>
    /// <exception cref="InvalidOperationException">CUDA was asked for but is not available.</exception>
    public static torch.Device ResolveDevice(string? requested = null)
    {
        if (string.IsNullOrWhiteSpace(requested) || requested.Equals("auto", StringComparison.OrdinalIgnoreCase))
            return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        torch.Device device;
        try { device = new torch.Device(requested); }
        catch (Exception e) { throw new ArgumentException($"Unknown device '{requested}'. Use cpu, cuda or cuda:N.", nameof(requested), e); }
        if (device.type == DeviceType.CUDA && !torch.cuda.is_available())
            throw new InvalidOperationException(
                $"Device '{requested}' was requested but CUDA is not available: reference TorchSharp-cuda-linux or TorchSharp-cuda-windows in your application (see docs/getting-started.md).");
        return device;
    }
}
