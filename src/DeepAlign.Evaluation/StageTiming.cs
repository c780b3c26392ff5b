using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeepAlign.Evaluation;

/// <summary>Wall time of one stage of a job.</summary>
/// <param name="Name">Stage name.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record StageTiming(string Name, double Seconds);
