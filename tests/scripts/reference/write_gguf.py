#!/usr/bin/env python3
"""Writes a GGUF (version 3) file from a DeepAlign/Hugging Face safetensors folder, for the llama.cpp peer of the decode
benchmarks (docs/performance.md, "Decoding precision"). Written from the GGUF format description (header, key/value
metadata, tensor infos, aligned tensor data) and ggml's block layouts; needs only numpy.

usage: write_gguf.py MODEL_DIR OUT.gguf --type f32|bf16|q8_0|q4_0

Architectures: llama (q/k rows permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved one)
and qwen2 (NEOX RoPE, no permutation; q/k/v biases). 1-D tensors (norms, biases) are always f32. The vocabulary is a
synthetic SentencePiece-style one (<unk>, <s>, </s>, 256 byte tokens, then placeholders): the benchmarks feed token
ids directly, so no text is ever tokenized.
"""
import argparse, json, os, struct, sys
import numpy as np

GGML_F32, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 2, 8, 30
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64 = 4, 5, 6, 7, 8, 9, 10
ALIGN = 32


def read_safetensors(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    tensors = {}
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            base = 8 + n
            for key, info in header.items():
                if key == "__metadata__":
                    continue
                start, end = info["data_offsets"]
                f.seek(base + start)
                raw = f.read(end - start)
                if info["dtype"] == "F32":
                    a = np.frombuffer(raw, dtype="<f4")
                elif info["dtype"] == "BF16":
                    a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
                elif info["dtype"] == "F16":
                    a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
                else:
                    sys.exit(f"{name}: tensor {key}: dtype {info['dtype']} is not supported")
                tensors[key] = a.reshape(info["shape"])
    return tensors


def to_bf16(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")


def q8_0(a):
    x = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, 32)
    d = np.abs(x).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.round(x * inv[:, None]), -127, 127).astype(np.int8)
    out = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", 32)])
    out["d"] = d.astype(np.float16)
    out["qs"] = q
    return out


def q4_0(a):
    x = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, 32)
    idx = np.abs(x).argmax(axis=1)
    signed_max = x[np.arange(x.shape[0]), idx]
    d = signed_max / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0.0)
    v = np.minimum(15, np.floor(x * inv[:, None] + 8.5)).clip(0, 15).astype(np.uint8)
    out = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("qs", "u1", 16)])
    out["d"] = d.astype(np.float16)
    out["qs"] = v[:, :16] | (v[:, 16:] << 4)
    return out


def permute_rows(w, heads):
    """Hugging Face rotate-half order -> llama.cpp interleaved pairs, per head."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == T_UINT32:
        out += struct.pack("<I", value)
    elif vtype == T_FLOAT32:
        out += struct.pack("<f", value)
    elif vtype == T_STRING:
        out += gguf_string(value)
    elif vtype == T_BOOL:
        out += struct.pack("<?", value)
    else:
        raise ValueError(vtype)
    return out


def kv_array(key, etype, values):
    out = gguf_string(key) + struct.pack("<I", T_ARRAY) + struct.pack("<IQ", etype, len(values))
    if etype == T_STRING:
        out += b"".join(gguf_string(v) for v in values)
    elif etype == T_FLOAT32:
        out += np.asarray(values, dtype="<f4").tobytes()
    elif etype == T_INT32:
        out += np.asarray(values, dtype="<i4").tobytes()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--type", choices=["f32", "bf16", "q8_0", "q4_0"], default="f32")
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.model_dir, "config.json")))
    arch = cfg["model_type"]
    if arch not in ("llama", "qwen2"):
        sys.exit(f"model_type {arch} is not supported")
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hidden, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    head_dim = cfg.get("head_dim") or hidden // heads
    st = read_safetensors(args.model_dir)

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
                 "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
                 "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
                 "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    tensors = []
    for key, a in st.items():
        if key.startswith("model.layers."):
            i, rest = key[len("model.layers."):].split(".", 1)
            if rest not in per_layer:
                sys.exit(f"tensor {key} has no GGUF name")
            gname = f"blk.{i}.{per_layer[rest]}"
            if arch == "llama" and rest == "self_attn.q_proj.weight":
                a = permute_rows(a, heads)
            if arch == "llama" and rest == "self_attn.k_proj.weight":
                a = permute_rows(a, kv_heads)
        elif key in names:
            gname = names[key]
        else:
            sys.exit(f"tensor {key} has no GGUF name")
        if a.ndim == 1 or args.type == "f32":
            data, gtype = np.ascontiguousarray(a, dtype="<f4"), GGML_F32
        elif args.type == "bf16":
            data, gtype = to_bf16(a), GGML_BF16
        elif a.shape[-1] % 32 != 0:
            data, gtype = np.ascontiguousarray(a, dtype="<f4"), GGML_F32
        elif args.type == "q8_0":
            data, gtype = q8_0(a), GGML_Q8_0
        else:
            data, gtype = q4_0(a), GGML_Q4_0
        tensors.append((gname, list(reversed(a.shape)), gtype, data.tobytes()))

    meta = [kv("general.architecture", T_STRING, arch), kv("general.name", T_STRING, "deepalign-random"),
            kv("general.alignment", T_UINT32, ALIGN),
            kv(f"{arch}.context_length", T_UINT32, cfg.get("max_position_embeddings", 2048)),
            kv(f"{arch}.embedding_length", T_UINT32, hidden), kv(f"{arch}.block_count", T_UINT32, layers),
            kv(f"{arch}.feed_forward_length", T_UINT32, cfg["intermediate_size"]),
            kv(f"{arch}.rope.dimension_count", T_UINT32, head_dim),
            kv(f"{arch}.attention.head_count", T_UINT32, heads), kv(f"{arch}.attention.head_count_kv", T_UINT32, kv_heads),
            kv(f"{arch}.attention.layer_norm_rms_epsilon", T_FLOAT32, cfg.get("rms_norm_eps", 1e-6)),
            kv(f"{arch}.rope.freq_base", T_FLOAT32, cfg.get("rope_theta", 10000.0)),
            kv(f"{arch}.vocab_size", T_UINT32, vocab)]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"t{i}" for i in range(len(tokens), vocab)]
    types = [2, 3, 3] + [6] * 256 + [1] * (vocab - 259)
    meta += [kv("tokenizer.ggml.model", T_STRING, "llama"), kv_array("tokenizer.ggml.tokens", T_STRING, tokens[:vocab]),
             kv_array("tokenizer.ggml.scores", T_FLOAT32, [0.0] * vocab), kv_array("tokenizer.ggml.token_type", T_INT32, types[:vocab]),
             kv("tokenizer.ggml.bos_token_id", T_UINT32, 1), kv("tokenizer.ggml.eos_token_id", T_UINT32, 2),
             kv("tokenizer.ggml.add_bos_token", T_BOOL, False)]

    infos, offset = [], 0
    for gname, dims, gtype, raw in tensors:
        infos.append(gguf_string(gname) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", gtype, offset))
        offset += (len(raw) + ALIGN - 1) // ALIGN * ALIGN
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
        for m in meta:
            f.write(m)
        for i in infos:
            f.write(i)
        f.write(b"\0" * ((ALIGN - f.tell() % ALIGN) % ALIGN))
        for _, _, _, raw in tensors:
            f.write(raw)
            f.write(b"\0" * ((ALIGN - len(raw) % ALIGN) % ALIGN))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {arch}, {len(tensors)} tensors, {args.type}, {os.path.getsize(args.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
