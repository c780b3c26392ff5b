using DeepAlign.Runtime;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DeepAlign.Checkpoints;
using DeepAlign.Models;
using DeepAlign.Models.Common;
using DeepAlign.Training;
using DeepAlign.Training.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using DeepAlign.Configuration;
using DeepAlign.Data;
using DeepAlign.Text;

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
}
