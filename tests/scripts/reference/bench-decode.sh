#!/usr/bin/env bash
# Batch-1 (or --batch B) decode tokens/s: DeepAlign per weight format and llama.cpp (LLamaSharp 0.30) on GGUF files
# written from the same random float32 model, interleaved round by round (docs/performance.md, "Decoding precision").
# usage: tests/scripts/reference/bench-decode.sh [ROUNDS] [BATCH] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${1:-2}; BATCH=${2:-1}; THREADS=${3:-1}
WORK=${DEEPALIGN_BENCH_DIR:-${TMPDIR:-/tmp}/deepalign-bench-decode}
mkdir -p "$WORK"
dotnet build tests/DeepAlign.Benchmarks -c Release -v q >/dev/null
dotnet build tests/DeepAlign.Benchmarks.LlamaCpp -c Release -v q >/dev/null
B=tests/DeepAlign.Benchmarks/bin/Release/net10.0/DeepAlign.Benchmarks
L=tests/DeepAlign.Benchmarks.LlamaCpp/bin/Release/net10.0/DeepAlign.Benchmarks.LlamaCpp
if [ ! -f "$WORK/llama125m/model.safetensors" ]; then
  $B decode-precision --variants fp32 --repeats 1 --decode 2 --save "$WORK/llama125m" >/dev/null
fi
for t in f32 bf16 q8_0 q4_0; do
  [ -f "$WORK/llama125m-$t.gguf" ] || /usr/bin/python3 tests/scripts/reference/write_gguf.py "$WORK/llama125m" "$WORK/llama125m-$t.gguf" --type $t
done
echo "machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  echo "--- round $r (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  $B decode-precision --threads "$THREADS" --batch "$BATCH" --repeats 3 | grep '^{'
  for t in f32 bf16 q8_0 q4_0; do $L "$WORK/llama125m-$t.gguf" --threads "$THREADS" --batch "$BATCH" --repeats 3; done
done
