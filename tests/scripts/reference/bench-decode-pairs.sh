#!/usr/bin/env bash
# Batch-1 decode tokens/s, DeepAlign against llama.cpp (LLamaSharp 0.30) precision by precision: each pair runs back to
# back (DeepAlign first in odd rounds, llama.cpp first in even ones) so both see the same load; the load average is
# printed before every pair (docs/performance.md, "Decoding precision, round 3").
# usage: tests/scripts/reference/bench-decode-pairs.sh [ROUNDS] [THREADS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${1:-2}; THREADS=${2:-1}; REPEATS=${3:-3}
WORK=${DEEPALIGN_BENCH_DIR:-${TMPDIR:-/tmp}/deepalign-bench-decode}
mkdir -p "$WORK"
dotnet build tests/DeepAlign.Benchmarks -c Release -v q >/dev/null
dotnet build tests/DeepAlign.Benchmarks.LlamaCpp -c Release -v q >/dev/null
B=tests/DeepAlign.Benchmarks/bin/Release/net10.0/DeepAlign.Benchmarks
L=tests/DeepAlign.Benchmarks.LlamaCpp/bin/Release/net10.0/DeepAlign.Benchmarks.LlamaCpp
if [ ! -f "$WORK/llama125m/model.safetensors" ]; then
  $B decode-precision --variants fp32 --repeats 1 --decode 2 --save "$WORK/llama125m" >/dev/null
fi
for t in f32 bf16 q8_0; do
  [ -f "$WORK/llama125m-$t.gguf" ] || /usr/bin/python3 tests/scripts/reference/write_gguf.py "$WORK/llama125m" "$WORK/llama125m-$t.gguf" --type $t
done
echo "machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
pair() { # DeepAlign variants, GGUF type, round
  local ours="$B decode-precision --threads $THREADS --repeats $REPEATS --variants fp32,$1"
  local peer="$L $WORK/llama125m-$2.gguf --threads $THREADS --repeats $REPEATS"
  echo "--- round $3, $1 vs $2 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ $(( $3 % 2 )) -eq 1 ]; then $ours | grep '^{' | grep -v '"variant": "fp32",'; $peer; else $peer; $ours | grep '^{' | grep -v '"variant": "fp32",'; fi
}
for r in $(seq 1 "$ROUNDS"); do
  pair fp32-kernels f32 "$r"
  pair bf16-kernels bf16 "$r"
  pair int8,w8a8 q8_0 "$r"
done
