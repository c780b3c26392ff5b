#!/usr/bin/python3
"""Reference logits for DeepAlign's Llama/Qwen2 parity tests.

Run with Debian's Python (torch 1.13; neither transformers nor safetensors is installed):

    /usr/bin/python3 tests/scripts/reference/llama_reference.py            # regenerate the fixtures
    /usr/bin/python3 tests/scripts/reference/llama_reference.py --check DIR [--ids 1,2,3]   # logits of any folder

For each case it draws weights from a fixed seed, writes a Hugging Face model folder (config.json,
generation_config.json, safetensors written by the small writer below) under
tests/DeepAlign.Core.Tests/Fixtures/models/<case>/, and writes expected.safetensors with
input_ids [B, T] int64, attention_mask [B, T] int64 (row 1 left-padded), logits [B, T, V] float32 for the
unpadded batch and logits_padded [B, T, V] float32 for the padded one (only real positions are meaningful).

The forward pass is written here from the Hugging Face semantics, independently of the C# code:
  * RMSNorm: x in float32, x * rsqrt(mean(x^2) + eps), cast back to the input dtype, times weight.
  * RoPE: inv_freq = 1 / theta^(arange(0, d, 2) / d); cos/sin of cat(freqs, freqs); rotate_half pairs
    dimension i with i + d/2: rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2]).
  * rope_scaling llama3: transformers' _compute_llama3_parameters (wavelength bands, smooth interpolation).
  * GQA: repeat_kv repeats each key/value head n_rep times consecutively (kv head j serves query heads j*n_rep..).
  * attention: softmax(q k^T / sqrt(d) + mask) v in float32 (eager path), causal + padding mask with
    finfo.min, position ids = cumsum(mask) - 1 for padded rows.
  * MLP: down(silu(gate(x)) * up(x)); Qwen2 has q/k/v biases; Llama attention_bias/mlp_bias add biases.
  * tied head: logits = h @ model.embed_tokens.weight^T (no lm_head.weight stored).
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OUT = os.path.join(ROOT, "tests", "DeepAlign.Core.Tests", "Fixtures", "models")

DTYPES = {torch.float32: ("F32", 4), torch.float16: ("F16", 2), torch.bfloat16: ("BF16", 2),
          torch.float64: ("F64", 8), torch.int64: ("I64", 8), torch.int32: ("I32", 4), torch.uint8: ("U8", 1)}
NAMES = {v[0]: k for k, v in DTYPES.items()}


# ---------------------------------------------------------------- safetensors (own minimal writer / reader)
def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_safetensors(path, tensors, metadata=None):
    names = sorted(tensors)
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for n in names:
        t = tensors[n]
        b = tensor_bytes(t)
        header[n] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = NAMES[info["dtype"]]
        b, e = info["data_offsets"]
        raw = bytearray(data[base + b:base + e])
        if dt in (torch.bfloat16, torch.float16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt)
        else:
            t = torch.frombuffer(raw, dtype=dt)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_folder(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        w = load_safetensors(single)
    else:
        index = json.load(open(os.path.join(folder, "model.safetensors.index.json")))
        w = {}
        for shard in sorted(set(index["weight_map"].values())):
            w.update(load_safetensors(os.path.join(folder, shard)))
    return cfg, w


# ---------------------------------------------------------------- reference forward
def head_dim(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def inv_freq(cfg):
    d = head_dim(cfg)
    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    rs = cfg.get("rope_scaling")
    if rs is None:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    assert kind == "llama3", kind
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / low, old / high
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(medium, smoothed, scaled)


def rms_norm(x, w, eps):
    dt = x.dtype
    xf = x.to(torch.float32)
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x, n):
    b, kv, s, d = x.shape
    if n == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n, s, d).reshape(b, kv * n, s, d)


def linear(w, prefix, x):
    y = x @ w[prefix + ".weight"].t()
    if prefix + ".bias" in w:
        y = y + w[prefix + ".bias"]
    return y


def forward(cfg, w, ids, mask=None):
    """Logits [B, T, V] in float32 (weights converted to float32 first)."""
    w = {k: v.to(torch.float32) for k, v in w.items()}
    b, t = ids.shape
    hd, nh = head_dim(cfg), cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    if mask is None:
        mask = torch.ones(b, t, dtype=torch.int64)
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    freqs = pos[:, :, None].float() * inv_freq(cfg)[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    allowed = torch.tril(torch.ones(t, t, dtype=torch.bool))[None, None] & mask.bool()[:, None, None, :]
    bias = torch.zeros(b, 1, t, t).masked_fill(~allowed, torch.finfo(torch.float32).min)

    h = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = linear(w, p + "self_attn.q_proj", x).view(b, t, nh, hd).transpose(1, 2)
        k = linear(w, p + "self_attn.k_proj", x).view(b, t, nkv, hd).transpose(1, 2)
        v = linear(w, p + "self_attn.v_proj", x).view(b, t, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, nh // nkv), repeat_kv(v, nh // nkv)
        scores = q @ k.transpose(2, 3) / math.sqrt(hd) + bias
        probs = torch.softmax(scores.float(), dim=-1)
        att = (probs @ v).transpose(1, 2).reshape(b, t, nh * hd)
        h = h + linear(w, p + "self_attn.o_proj", att)
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        gate = linear(w, p + "mlp.gate_proj", x)
        up = linear(w, p + "mlp.up_proj", x)
        h = h + linear(w, p + "mlp.down_proj", torch.nn.functional.silu(gate) * up)
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return (h @ head.t()).float()


# ---------------------------------------------------------------- fixture cases
BASE = dict(vocab_size=128, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=10000.0,
            hidden_act="silu", tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, initializer_range=0.02,
            attention_bias=False, mlp_bias=False, use_cache=True)

CASES = {
    "llama_gqa": dict(model_type="llama", architectures=["LlamaForCausalLM"]),
    "llama_tied": dict(model_type="llama", architectures=["LlamaForCausalLM"], tie_word_embeddings=True,
                       num_key_value_heads=2, head_dim=24, eos_token_id=[2, 3]),
    "llama_rope_llama3": dict(model_type="llama", architectures=["LlamaForCausalLM"], rope_theta=500000.0,
                              rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                high_freq_factor=4.0, original_max_position_embeddings=64)),
    "llama_bf16": dict(model_type="llama", architectures=["LlamaForCausalLM"], torch_dtype="bfloat16"),
    "llama_sharded_bias": dict(model_type="llama", architectures=["LlamaForCausalLM"], attention_bias=True,
                               mlp_bias=True, num_key_value_heads=1),
    "qwen2_bias_tied": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], tie_word_embeddings=True,
                            num_key_value_heads=4, rope_theta=1000000.0, rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=4096,
                            max_window_layers=2),
}


def make_weights(cfg, gen):
    hs, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = head_dim(cfg)
    qwen = cfg["model_type"] == "qwen2"
    attn_bias = cfg.get("attention_bias", False)
    mlp_bias = cfg.get("mlp_bias", False)

    def rnd(*shape, std=0.15):
        return torch.randn(*shape, generator=gen) * std

    w = {"model.embed_tokens.weight": rnd(v, hs, std=0.5), "model.norm.weight": 1 + rnd(hs, std=0.1)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        w[p + "input_layernorm.weight"] = 1 + rnd(hs, std=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + rnd(hs, std=0.1)
        for name, (o, n) in dict(q_proj=(nh * hd, hs), k_proj=(nkv * hd, hs), v_proj=(nkv * hd, hs),
                                 o_proj=(hs, nh * hd)).items():
            w[p + "self_attn." + name + ".weight"] = rnd(o, n, std=1 / math.sqrt(n))
            if (qwen and name != "o_proj") or (not qwen and attn_bias):
                w[p + "self_attn." + name + ".bias"] = rnd(o, std=0.2)
        for name, (o, n) in dict(gate_proj=(inter, hs), up_proj=(inter, hs), down_proj=(hs, inter)).items():
            w[p + "mlp." + name + ".weight"] = rnd(o, n, std=1 / math.sqrt(n))
            if not qwen and mlp_bias:
                w[p + "mlp." + name + ".bias"] = rnd(o, std=0.1)
    if not cfg.get("tie_word_embeddings"):
        w["lm_head.weight"] = rnd(v, hs, std=1 / math.sqrt(hs))
    return w


def write_case(name, overrides, seed):
    cfg = dict(BASE)
    cfg.update(overrides)
    cfg.setdefault("torch_dtype", "float32")
    gen = torch.Generator().manual_seed(seed)
    w = make_weights(cfg, gen)
    store_dtype = torch.bfloat16 if cfg["torch_dtype"] == "bfloat16" else torch.float32
    w = {k: v.to(store_dtype) for k, v in w.items()}

    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": False,
                   "max_new_tokens": 16}, f, indent=2)
    if name.startswith("llama_sharded"):
        names = sorted(w)
        shards = [names[0::3], names[1::3], names[2::3]]
        weight_map, total = {}, 0
        for i, shard in enumerate(shards):
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
            save_safetensors(os.path.join(folder, fn), {k: w[k] for k in shard}, {"format": "pt"})
            for k in shard:
                weight_map[k] = fn
                total += w[k].numel() * w[k].element_size()
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    else:
        save_safetensors(os.path.join(folder, "model.safetensors"), w, {"format": "pt"})

    t = 16
    ids = torch.randint(0, cfg["vocab_size"], (2, t), generator=gen)
    mask = torch.ones(2, t, dtype=torch.int64)
    mask[1, :5] = 0
    cfg_loaded, w_loaded = load_folder(folder)  # exercise the files exactly as written
    with torch.no_grad():
        logits = forward(cfg_loaded, w_loaded, ids)
        padded = forward(cfg_loaded, w_loaded, ids, mask)
        # Sanity: a padded row's real positions equal the unpadded run of its real tokens.
        alone = forward(cfg_loaded, w_loaded, ids[1:, 5:])
        assert torch.allclose(alone[0], padded[1, 5:], atol=1e-5), "padding changed real-token logits"
    save_safetensors(os.path.join(OUT, name + ".expected.safetensors"),
                     {"input_ids": ids, "attention_mask": mask, "logits": logits, "logits_padded": padded},
                     {"case": name, "seed": str(seed)})
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print("%-22s %7d bytes of weights, logits std %.3f" % (name, size, logits.std().item()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", help="print logits of a model folder for --ids (e.g. one saved by C#)")
    ap.add_argument("--ids", default="1,5,7,11,13")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check:
        cfg, w = load_folder(args.check)
        ids = torch.tensor([[int(x) for x in args.ids.split(",")]])
        with torch.no_grad():
            print(json.dumps(forward(cfg, w, ids)[0].tolist()))
        return
    for i, (name, overrides) in enumerate(sorted(CASES.items())):
        write_case(name, overrides, seed=1234 + i)


if __name__ == "__main__":
    sys.exit(main())
