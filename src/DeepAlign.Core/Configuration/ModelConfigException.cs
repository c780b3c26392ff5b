using DeepAlign.Checkpoints;

namespace DeepAlign.Configuration;

/// <summary>
/// A model's <c>config.json</c> is malformed, out of bounds, unsupported or disagrees with the checkpoint it describes.
/// The message names the file and the config key. It is a <see cref="CheckpointFormatException"/>: the config is part
/// of the checkpoint folder (docs/reliability.md).
/// </summary>
public sealed class ModelConfigException : CheckpointFormatException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The config file.</param>
    /// <param name="key">The config key at fault (JSON path), when known.</param>
    /// <param name="message">What is wrong.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public ModelConfigException(string? filePath, string? key, string message, Exception? inner = null)
        : base(filePath, message, inner)
    {
        Key = key;
    }

    /// <summary>The config key at fault, when known.</summary>
    public string? Key { get; }
}
