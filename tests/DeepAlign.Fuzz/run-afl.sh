#!/usr/bin/env bash
# Long fuzz run of one DeepAlign parser under AFL++ with SharpFuzz instrumentation (docs/reliability.md).
#   tests/DeepAlign.Fuzz/run-afl.sh TARGET [SECONDS] [OUT]
# TARGET: safetensors index config generation_config tokenizer tokenizer_config jinja jsonl judge trainer_state world_tokenizer
# Needs: afl-fuzz (Debian package afl++) and the sharpfuzz tool (dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0).
set -euo pipefail
target="${1:?target}"
seconds="${2:-600}"
out="${3:-/tmp/deepalign-afl-$target}"
here="$(cd "$(dirname "$0")" && pwd)"
bin="${DEEPALIGN_FUZZ_BIN:-/tmp/deepalign-fuzz-bin}"
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }
sharpfuzz="$(command -v sharpfuzz || echo "$HOME/.dotnet/tools/sharpfuzz")"
[ -x "$sharpfuzz" ] || { echo "sharpfuzz not found: dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0" >&2; exit 2; }
if [ ! -f "$bin/.instrumented" ]; then
  dotnet publish "$here/DeepAlign.Fuzz.csproj" -c Release -o "$bin" >/dev/null
  for dll in DeepAlign.Core.dll DeepAlign.Evaluation.dll DeepAlign.Organism.dll; do "$sharpfuzz" "$bin/$dll"; done
  touch "$bin/.instrumented"
fi
seeds="$(mktemp -d)"
cp "$here/corpus/$target"/seed-* "$seeds/"
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_FAST_CAL=1
afl-fuzz -i "$seeds" -o "$out" -t 10000 -m none -V "$seconds" -- dotnet "$bin/DeepAlign.Fuzz.dll" afl "$target" || true
stats="$out/default/fuzzer_stats"
[ -f "$stats" ] && grep -E "^(execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|run_time)" "$stats"
crashes=$(ls "$out/default/crashes" 2>/dev/null | grep -vc README || true)
hangs=$(ls "$out/default/hangs" 2>/dev/null | wc -l)
echo "target $target: crashes=$crashes hangs=$hangs (replay: dotnet $bin/DeepAlign.Fuzz.dll replay $target $out/default/crashes/id*)"
