using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepAlign.Evaluation;

/// <summary>
/// The JSON Schema (draft 2020-12 subset) of <see cref="EvaluationReport"/> files, and a validator for the keywords
/// it uses (<c>type</c>, <c>required</c>, <c>properties</c>, <c>additionalProperties</c>, <c>items</c>,
/// <c>minimum</c>, <c>maximum</c>, <c>const</c>, <c>enum</c>, <c>$ref</c> to <c>#/$defs/...</c>). The schema is written
/// next to each results file so other tools can check them too.
/// </summary>
public static class ResultsSchema
{
    /// <summary>The schema id written into every results file. Version 2 added the optional per-item results
    /// (<c>items</c> of each attack) and the run's <c>provenance</c>; files of version 1 still validate and read.</summary>
    public const string Id = "deepalign.evaluation-results/2";

    /// <summary>Every schema id this version validates and reads, oldest first.</summary>
    public static IReadOnlyList<string> Ids { get; } = ["deepalign.evaluation-results/1", Id];

    /// <summary>The schema text.</summary>
    public static string Json { get; } = """
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://deepalign.dev/schemas/evaluation-results-2.json",
  "title": "DeepAlign evaluation results",
  "type": "object",
  "required": ["schema", "metadata", "stages", "runs", "summary"],
  "additionalProperties": false,
  "properties": {
    "schema": { "enum": ["deepalign.evaluation-results/1", "deepalign.evaluation-results/2"] },
    "metadata": { "type": "object", "additionalProperties": { "type": "string" } },
    "provenance": { "type": ["object", "null"], "$ref": "#/$defs/provenance" },
    "stages": { "type": "array", "items": { "$ref": "#/$defs/stage" } },
    "runs": { "type": "array", "items": { "$ref": "#/$defs/run" } },
    "summary": { "type": "array", "items": { "$ref": "#/$defs/summary" } }
  },
  "$defs": {
    "stage": {
      "type": "object", "required": ["name", "seconds"], "additionalProperties": false,
      "properties": { "name": { "type": "string" }, "seconds": { "type": "number", "minimum": 0 } }
    },
    "run": {
      "type": "object", "required": ["seed", "defenses"], "additionalProperties": false,
      "properties": { "seed": { "type": "integer" }, "defenses": { "type": "array", "items": { "$ref": "#/$defs/defense" } } }
    },
    "defense": {
      "type": "object", "required": ["defense", "attacks", "utility"], "additionalProperties": false,
      "properties": {
        "defense": { "type": "string" },
        "attacks": { "type": "array", "items": { "$ref": "#/$defs/attack" } },
        "utility": { "type": ["object", "null"], "$ref": "#/$defs/utility" }
      }
    },
    "rate": {
      "type": "object", "required": ["judge", "successes", "n", "rate", "low", "high", "refused", "other"], "additionalProperties": false,
      "properties": {
        "judge": { "type": "string" },
        "successes": { "type": "integer", "minimum": 0 },
        "n": { "type": "integer", "minimum": 0 },
        "rate": { "type": "number", "minimum": 0, "maximum": 1 },
        "low": { "type": "number", "minimum": 0, "maximum": 1 },
        "high": { "type": "number", "minimum": 0, "maximum": 1 },
        "refused": { "type": "integer", "minimum": 0 },
        "other": { "type": "integer", "minimum": 0 },
        "unparseable": { "type": "integer", "minimum": 0 }
      }
    },
    "agreement": {
      "type": "object", "required": ["judge", "reference", "counts"], "additionalProperties": false,
      "properties": {
        "judge": { "type": "string" },
        "reference": { "type": "string" },
        "counts": { "type": "array", "items": { "type": "array", "items": { "type": "integer", "minimum": 0 } } },
        "n": { "type": "integer", "minimum": 0 },
        "agreement": { "type": ["number", "null"], "minimum": 0, "maximum": 1 },
        "kappa": { "type": ["number", "null"], "minimum": -1, "maximum": 1 },
        "harmful_agreement": { "type": ["number", "null"], "minimum": 0, "maximum": 1 },
        "harmful_kappa": { "type": ["number", "null"], "minimum": -1, "maximum": 1 }
      }
    },
    "attack": {
      "type": "object", "required": ["attack", "label", "parameters", "judges", "settings", "examples", "seconds"], "additionalProperties": false,
      "properties": {
        "attack": { "enum": ["plain", "prefill", "rank_assisted", "decoding_sweep"] },
        "label": { "type": "string" },
        "parameters": { "type": "object", "additionalProperties": { "type": "number" } },
        "judges": { "type": "array", "items": { "$ref": "#/$defs/rate" } },
        "settings": {
          "type": ["array", "null"],
          "items": {
            "type": "object", "required": ["name", "successes", "n"], "additionalProperties": false,
            "properties": { "name": { "type": "string" }, "successes": { "type": "integer", "minimum": 0 }, "n": { "type": "integer", "minimum": 0 } }
          }
        },
        "examples": {
          "type": "array",
          "items": {
            "type": "object", "required": ["id", "prompt", "response", "verdict"], "additionalProperties": false,
            "properties": { "id": { "type": ["string", "null"] }, "prompt": { "type": "string" }, "response": { "type": "string" }, "verdict": { "enum": ["Harmful", "Refused", "Other", "Unparseable"] } }
          }
        },
        "seconds": { "type": "number", "minimum": 0 },
        "agreements": { "type": ["array", "null"], "items": { "$ref": "#/$defs/agreement" } },
        "items": { "type": ["array", "null"], "items": { "$ref": "#/$defs/item" } }
      }
    },
    "item": {
      "type": "object", "required": ["key", "id", "index", "prompt_sha256", "verdicts"], "additionalProperties": false,
      "properties": {
        "key": { "type": "string" },
        "id": { "type": ["string", "null"] },
        "index": { "type": "integer", "minimum": 0 },
        "prompt_sha256": { "type": "string" },
        "verdicts": { "type": "object", "additionalProperties": { "enum": ["Harmful", "Refused", "Other", "Unparseable"] } }
      }
    },
    "provenance": {
      "type": "object", "required": ["tool", "dataset", "models", "judges", "attack_config"], "additionalProperties": false,
      "properties": {
        "tool": { "type": "string" },
        "dataset": {
          "type": ["object", "null"], "required": ["path", "format", "fingerprint", "records"], "additionalProperties": false,
          "properties": {
            "path": { "type": "string" }, "format": { "type": "string" }, "fingerprint": { "type": "string" },
            "records": { "type": "integer", "minimum": 0 }
          }
        },
        "models": { "type": "object", "additionalProperties": { "type": "string" } },
        "judges": { "type": "object", "additionalProperties": { "type": "string" } },
        "attack_config": { "type": ["object", "null"] }
      }
    },
    "utility": {
      "type": "object", "required": ["benign_accuracy", "perplexity", "agreement", "by_category", "seconds"], "additionalProperties": false,
      "properties": {
        "benign_accuracy": { "$ref": "#/$defs/rate" },
        "perplexity": { "type": ["number", "null"], "minimum": 1 },
        "agreement": { "type": ["object", "null"], "$ref": "#/$defs/rate" },
        "by_category": { "type": "object", "additionalProperties": { "type": "number", "minimum": 0, "maximum": 1 } },
        "seconds": { "type": "number", "minimum": 0 }
      }
    },
    "summary": {
      "type": "object", "required": ["defense", "metric", "judge", "mean", "std", "seeds", "n"], "additionalProperties": false,
      "properties": {
        "defense": { "type": "string" }, "metric": { "type": "string" }, "judge": { "type": "string" },
        "mean": { "type": "number" }, "std": { "type": "number", "minimum": 0 },
        "seeds": { "type": "integer", "minimum": 1 }, "n": { "type": "integer", "minimum": 0 }
      }
    }
  }
}
""";

    /// <summary>Validates a results document against <see cref="Json"/>; returns the problems (empty when valid), each naming the JSON path.</summary>
    public static IReadOnlyList<string> Validate(string json)
    {
        JsonNode? doc;
        try { doc = JsonNode.Parse(json); }
        catch (JsonException e) { return [$"$: invalid JSON ({e.Message})"]; }
        var schema = JsonNode.Parse(Json)!.AsObject();
        var errors = new List<string>();
        Check(doc, schema, schema, "$", errors);
        return errors;
    }

    private static void Check(JsonNode? value, JsonObject schema, JsonObject root, string path, List<string> errors)
    {
        bool isNull = value is null;
        if (schema["type"] is { } typeNode)
        {
            var types = typeNode is JsonArray arr ? arr.Select(t => t!.GetValue<string>()).ToArray() : [typeNode.GetValue<string>()];
            if (!types.Any(t => Is(value, t)))
            {
                errors.Add($"{path}: expected {string.Join(" or ", types)}, found {Kind(value)}");
                return;
            }
            if (isNull) return; // a nullable value that is null needs no further checks
        }
        if (schema["$ref"] is { } reference)
        {
            string name = reference.GetValue<string>().Replace("#/$defs/", "", StringComparison.Ordinal);
            if (root["$defs"]?[name] is not JsonObject target) { errors.Add($"{path}: unknown $ref {reference}"); return; }
            Check(value, target, root, path, errors);
        }
        if (schema["const"] is { } constant && !JsonNode.DeepEquals(constant, value))
            errors.Add($"{path}: must equal {constant.ToJsonString()}");
        if (schema["enum"] is JsonArray options && !options.Any(o => JsonNode.DeepEquals(o, value)))
            errors.Add($"{path}: must be one of {options.ToJsonString()}");
        if (value is JsonValue v && v.TryGetValue<double>(out double number))
        {
            if (schema["minimum"] is { } min && number < min.GetValue<double>()) errors.Add($"{path}: {number} is below the minimum {min}");
            if (schema["maximum"] is { } max && number > max.GetValue<double>()) errors.Add($"{path}: {number} is above the maximum {max}");
        }
        if (value is JsonObject obj)
        {
            if (schema["required"] is JsonArray required)
                foreach (var r in required)
                    if (!obj.ContainsKey(r!.GetValue<string>())) errors.Add($"{path}: missing required property \"{r}\"");
            var props = schema["properties"] as JsonObject;
            foreach (var (key, child) in obj)
            {
                if (props?[key] is JsonObject childSchema) Check(child, childSchema, root, $"{path}.{key}", errors);
                else if (schema["additionalProperties"] is JsonObject extra) Check(child, extra, root, $"{path}.{key}", errors);
                else if (schema["additionalProperties"] is JsonValue flag && flag.GetValue<bool>() == false) errors.Add($"{path}: unexpected property \"{key}\"");
            }
        }
        if (value is JsonArray items && schema["items"] is JsonObject itemSchema)
            for (int i = 0; i < items.Count; i++) Check(items[i], itemSchema, root, $"{path}[{i}]", errors);
    }

    private static bool Is(JsonNode? value, string type) => type switch
    {
        "null" => value is null,
        "object" => value is JsonObject,
        "array" => value is JsonArray,
        "string" => value is JsonValue s && s.GetValueKind() == JsonValueKind.String,
        "boolean" => value is JsonValue b && b.GetValueKind() is JsonValueKind.True or JsonValueKind.False,
        "number" => value is JsonValue n && n.GetValueKind() == JsonValueKind.Number,
        "integer" => value is JsonValue i && i.GetValueKind() == JsonValueKind.Number && i.TryGetValue<double>(out var d) && Math.Floor(d) == d,
        _ => false,
    };

    private static string Kind(JsonNode? value) => value is null ? "null" : value.GetValueKind().ToString().ToLowerInvariant();
}
