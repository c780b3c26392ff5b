#!/usr/bin/env python3
"""Writes the fuzz harness's seed corpus (tests/DeepAlign.Fuzz/corpus/<target>/): small VALID files of every format
DeepAlign reads from strangers. Standard library only. Run from the repository root:
    python3 tests/scripts/reliability/make_seed_corpus.py
"""
import json, os, shutil, struct

ROOT = os.path.join("tests", "DeepAlign.Fuzz", "corpus")
FIX = os.path.join("tests", "DeepAlign.Core.Tests", "Fixtures")
TEMPLATES = os.path.join("src", "DeepAlign.Core", "Text", "Templates")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(d, name), mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": "\n"})) as f:
        f.write(data)


SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape); data is a deterministic byte ramp."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = 1
        for s in shape:
            n *= s
        size = n * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        blobs.append(bytes((offset + i) % 251 for i in range(size)))
        offset += size
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tiny_llama(layers=2, vocab=16, hidden=8, inter=16, heads=2, kv=1, head_dim=4):
    t = [("model.embed_tokens.weight", "F32", [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}."
        t += [(p + "self_attn.q_proj.weight", "F32", [heads * head_dim, hidden]), (p + "self_attn.k_proj.weight", "F32", [kv * head_dim, hidden]),
              (p + "self_attn.v_proj.weight", "F32", [kv * head_dim, hidden]), (p + "self_attn.o_proj.weight", "F32", [hidden, heads * head_dim]),
              (p + "mlp.gate_proj.weight", "F32", [inter, hidden]), (p + "mlp.up_proj.weight", "F32", [inter, hidden]),
              (p + "mlp.down_proj.weight", "F32", [hidden, inter]), (p + "input_layernorm.weight", "F32", [hidden]),
              (p + "post_attention_layernorm.weight", "F32", [hidden])]
    t += [("model.norm.weight", "F32", [hidden]), ("lm_head.weight", "F32", [vocab, hidden])]
    return t


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    shard = safetensors([("a.weight", "F32", [2, 3]), ("b.bias", "F32", [3])], {"format": "pt"})
    put("safetensors", "seed-f32.safetensors", shard)
    put("safetensors", "seed-mixed.safetensors", safetensors([("x", "BF16", [4]), ("ids", "I64", [2, 2]), ("m", "BOOL", [3]), ("s", "F32", [])]))
    put("index", "seed-1.json", json.dumps({"metadata": {"total_size": 36},
        "weight_map": {"a.weight": "model-00001-of-00001.safetensors", "b.bias": "model-00001-of-00001.safetensors"}}, indent=2))
    llama = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 16, "hidden_size": 8, "intermediate_size": 16,
             "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "max_position_embeddings": 64,
             "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu", "attention_dropout": 0.0,
             "bos_token_id": 1, "eos_token_id": [2], "torch_dtype": "float32",
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}}
    put("config", "seed-llama.json", json.dumps(llama, indent=2))
    qwen = dict(llama, model_type="qwen2", architectures=["Qwen2ForCausalLM"], use_sliding_window=False)
    del qwen["rope_scaling"]
    put("config", "seed-qwen2.json", json.dumps(qwen, indent=2))
    put("config", "tiny.safetensors", safetensors(tiny_llama()))
    put("generation_config", "seed-1.json", json.dumps({"bos_token_id": 1, "eos_token_id": [2, 3], "do_sample": True,
        "temperature": 0.6, "top_p": 0.9, "top_k": 50, "max_new_tokens": 32, "repetition_penalty": 1.0}, indent=2))
    bpe = open(os.path.join(FIX, "reliability", "bpe", "tokenizer.json"), encoding="utf-8").read()
    put("tokenizer", "seed-bpe.json", bpe)
    put("tokenizer", "bpe.json", bpe)  # the fixed tokenizer.json of the tokenizer_config target (not a seed)
    put("tokenizer", "seed-wordlevel.json", open(os.path.join(FIX, "text", "wordlevel", "tokenizer.json"), encoding="utf-8").read())
    put("world_tokenizer", "seed-wordlevel.json", open(os.path.join(FIX, "text", "wordlevel", "tokenizer.json"), encoding="utf-8").read())
    put("tokenizer_config", "seed-1.json", open(os.path.join(FIX, "reliability", "bpe", "tokenizer_config.json"), encoding="utf-8").read())
    for name in sorted(os.listdir(TEMPLATES)):
        if name.endswith(".jinja"):
            text = open(os.path.join(TEMPLATES, name), encoding="utf-8").read()
            put("jinja", "seed-" + name, text)
            if name in ("llama3.jinja", "qwen2.5.jinja"):
                put("tokenizer_config", f"seed-{name[:-6]}.json", json.dumps({"bos_token": "<s>", "eos_token": "</s>", "chat_template": text}, indent=2))
    lines = [
        {"id": "p1", "prompt": "How do I sort a list?", "response": "Use sorted().", "category": "benign"},
        {"id": "h1", "system": "Be safe.", "prompt": "Do harm", "safe_response": "I can't help with that.", "harmful_response": "Sure, step 1"},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "again"}], "response": "r"},
        {"prompt_ids": [1, 5, 6], "response_ids": [7, 2]},
        {"ids": [1, 2, 3, 4], "mask": [0, 0, 1, 1]},
    ]
    put("jsonl", "seed-1.jsonl", "".join(json.dumps(l) + "\n" for l in lines))
    # CSV datasets: the hand-written AdvBench and HarmBench fixtures of the library tests (quoted commas, doubled quotes,
    # line breaks, non-ASCII text).
    fixtures = os.path.join("tests", "DeepAlign.Core.Tests", "Fixtures", "data")
    for name, seed in (("advbench_harmful_behaviors.csv", "seed-advbench.csv"), ("harmbench_behaviors.csv", "seed-harmbench.csv")):
        with open(os.path.join(fixtures, name), "rb") as f:
            put("csv", seed, f.read())
    put("judge", "seed-1.json", json.dumps({"ignore_case": True, "refusal_markers": ["I can't", "I cannot"],
        "items": {"h1": {"markers": ["step 1", "step 2"], "min_markers": 1}}, "categories": {"weapons": {"markers": ["gun"]}}}, indent=2))
    put("trainer_state", "seed-1.json", json.dumps({"format": 1, "step": 1, "optimizer_step": 1, "seed": 0, "objective": "sft",
        "data_position": {"draws": 8, "sources": [{"name": "train", "epoch": 0, "cursor": 8, "drawn": 8}]},
        "torch_rng_state": "AAAA", "trainable_parameters": ["model.embed_tokens.weight"]}, indent=2))


if __name__ == "__main__":
    main()
