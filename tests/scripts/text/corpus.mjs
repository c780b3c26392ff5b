// The tokenizer test corpus (>= 200 varied strings). Deterministic: no randomness without a fixed seed.
export function buildCorpus() {
  const c = [];
  const add = (...xs) => { for (const x of xs) c.push(x); };
  // Empty and whitespace shapes.
  add("", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\t\t\tindented", "a  b", "a   b    c", "trailing space ", "trailing spaces   ",
      "  leading spaces", "\tTab\tseparated\tvalues", "line one\nline two\n", "windows\r\nlines\r\n", "mixed \t \n whitespace", "x\n\n\n\ny",
      "  \n  \n", "end with newline\n", "\n starts with newline", "spaces before newline   \nnext");
  // Plain English and punctuation.
  add("Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.", "What's up? Not much...", "I'm sure you'll see they've gone; he'd said so.",
      "DON'T SHOUT, YOU'RE LOUD", "It's John's book, isn't it?", "rock 'n' roll", "\"quoted\" and 'single'", "semi;colons:and-dashes—em–en",
      "Mr. Smith went to Washington.", "e.g. i.e. etc.", "(parentheses) [brackets] {braces} <angles>", "!!!???...,,,", "a-b_c.d/e\\f",
      "Hello", "hello", "HELLO", " Hello", "  Hello", "Hello ", "camelCaseWord", "snake_case_word", "kebab-case-word", "ALLCAPSWORD",
      "Supercalifragilisticexpialidocious", "antidisestablishmentarianism", "x", "I", "a", "A.", "ok", "OK!");
  // Contractions in many cases.
  add("'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D", "you're", "YOU'RE", "We'Ll", "they'D", "it's", "IT'S", "o'clock", "ma'am");
  // Digits of many lengths.
  for (let n = 1; n <= 16; n++) add("1234567890123456789".slice(0, n));
  add("3.14159", "1,000,000", "2024-06-30", "12:34:56", "v1.2.3", "0x1F600", "1e-9", "-42", "+7", "100%", "$1,234.56", "€99", "1st 2nd 3rd 4th",
      "007", "phone: +1 (555) 123-4567", "a1b2c3", "99 bottles", "x=10;y=20", "1/2 + 3/4 = 5/4", "0.000001");
  // Code.
  add("def f(x):\n    return x + 1\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "const x = () => { return null; };",
      "if (a && b || !c) { throw new Error('bad'); }", "SELECT * FROM users WHERE id = 42;", "#include <stdio.h>\nint main(void) { return 0; }",
      "<div class=\"x\">Hi</div>", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "x += 1  # comment", "    indented code\n        more",
      "public static void Main(string[] args)", "lambda x: x**2", "a != b && c == d", "arr[0][1] = -1;", "`backticks` and ```fences```",
      "$ git commit -m \"fix\"", "// TODO: fix\n/* block */", "print(f\"{name!r:>10}\")", "#!/usr/bin/env bash\nset -euo pipefail", "<?xml version=\"1.0\"?>");
  // URLs and emails.
  add("https://example.com/path?query=1&x=y#frag", "http://www.example.org", "ftp://files.example.net/a/b/c.txt", "user@example.com",
      "Visit https://huggingface.co/docs now.", "www.google.com/search?q=tokenizer+bpe", "mailto:someone@example.org", "C:\\Windows\\System32",
      "/usr/local/bin/python3", "~/.config/file.json");
  // CJK, Arabic, other scripts.
  add("你好，世界", "我爱自然语言处理。", "日本語のテキストです", "カタカナ", "ひらがな", "한국어 텍스트", "中文 English 混合 text", "東京都",
      "مرحبا بالعالم", "السلام عليكم ورحمة الله", "مرحبا world", "שלום עולם", "Привет, мир!", "Ελληνικά γράμματα", "हिन्दी भाषा", "ไทย ภาษา",
      "Tiếng Việt có dấu", "Ümlaut Über Straße", "façade naïve café résumé", "ñandú", "Ærø Ødegaard Åse", "Łódź źdźbło", "İstanbul ılık",
      "Ἀθῆναι", "ᚠᚢᚦᚨᚱᚲ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟙𝟚𝟛", "中", "語", "文字化け");
  // Emoji, ZWJ sequences, flags, skin tones, variation selectors.
  add("😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "👩‍💻 coding", "🏳️‍🌈", "🇺🇸🇫🇷🇯🇵", "❤️", "❤", "☺️ smile", "I ❤️ NY", "🤖🤖🤖 robots",
      "emoji at end 🎉", "🎉 at start", "mixed😀text", "🧑🏿‍🚀", "✈️✈", "1️⃣2️⃣", "🫠", "🐍 python");
  // NFC vs NFD accents.
  const nfdPairs = ["é", "café", "naïve", "Åström", "Crème brûlée", "über", "señor", "Ångström", "résumé", "ḱṷṓn"];
  for (const s of nfdPairs) add(s.normalize("NFC"), s.normalize("NFD"));
  add("e\u0301", "a\u0308\u0301", "\u0041\u030A", "Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E");
  // Special tokens written inside text (all three vocabularies).
  add("<s>", "</s>", "<unk>", "Hello <s> world </s>", "<s>start", "end</s>", "a<s>b</s>c", "<s><s>",
      "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
      "text<|eot_id|>more", "<|begin_of_text|><|begin_of_text|>",
      "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
      "<think>\nreasoning\n</think>\n\nanswer", "<tool_call>{}</tool_call>", "< s >", "<|not_a_token|>", "<|im_start", "im_end|>");
  // Odd characters.
  add("\u00a0non-breaking\u00a0spaces", "zero\u200bwidth", "soft\u00adhyphen", "tab\u000bvertical", "form\u000cfeed", "bell\u0007char",
      "null\u0000char", "\u2028line sep", "ideographic\u3000space", "\u2581metaspace char", "▁▁ two metaspace", "Ġ byte-level char", "ĊĠ",
      "replacement \uFFFD char", "private \uE000 use", "combining only \u0301", "<0x41>", "<0xE4>");
  // Longer passages.
  add("Alignment of language models is often shallow: it adjusts the first few output tokens and leaves later positions close to the base model. " +
      "We measure where the aligned model departs from the base, token by token, and train where it does not.",
      "In 1492, Columbus sailed the ocean blue. In 1969, Apollo 11 landed on the Moon; Neil Armstrong said: \"That's one small step for [a] man.\"",
      "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\n\nUt enim ad minim veniam.",
      "Q: What is 2+2?\nA: 4.\nQ: And 17*23?\nA: 391.",
      "- item one\n- item two\n  - nested item\n1. first\n2. second",
      "| col1 | col2 |\n|------|------|\n| a    | b    |",
      "Dear Sir/Madam,\n\nI am writing to inform you...\n\nBest regards,\nJ. Doe",
      "a".repeat(100), "ab".repeat(60), " ".repeat(40) + "x", "\n".repeat(12), "1".repeat(50), "😀".repeat(10), "é".repeat(30),
      "The year 2023 saw 12345 new tokens, 678 of which were emoji 🎉 and 9 were CJK (中文).");
  return c;
}
