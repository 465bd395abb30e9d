"""Embeddings requests and answers: limits, `embedding_type` and `encoding_format`.

Heroku's CLI prints `data[0].embeddings`, OpenAI clients read `data[0].embedding`: both are
sent. Quantised types follow Cohere's definitions, which Heroku's API exposes: int8/uint8
scale each dimension from [-1, 1] to a byte; binary/ubinary pack the signs, 8 to a byte.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from .errors import invalid

MAX_INPUTS = 96
MAX_CHARS = 2048
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")


def validate(body: Any) -> tuple[list[str], str, str]:
    """The texts, embedding type and encoding format of a request, or InferenceError(400)."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise invalid("input is required: a string or a list of strings")
    if len(texts) > MAX_INPUTS:
        raise invalid(f"input may hold at most {MAX_INPUTS} strings")
    for i, t in enumerate(texts):
        if len(t) > MAX_CHARS:
            raise invalid(f"input[{i}] is longer than {MAX_CHARS} characters")
        if not t.strip():
            raise invalid(f"input[{i}] is empty")
    if body.get("input_type", "search_document") not in INPUT_TYPES:
        raise invalid(f"input_type must be one of {', '.join(INPUT_TYPES)}")
    etype = body.get("embedding_type", "float")
    if etype not in EMBEDDING_TYPES:
        raise invalid(f"embedding_type must be one of {', '.join(EMBEDDING_TYPES)}")
    fmt = body.get("encoding_format", "raw")
    if fmt == "float":
        fmt = "raw"  # OpenAI's name for it
    if fmt not in ("raw", "base64"):
        raise invalid("encoding_format must be raw or base64")
    return texts, str(etype), str(fmt)


def _clip(v: float) -> float:
    return -1.0 if v < -1.0 else 1.0 if v > 1.0 else v


def _bits(vector: list[float]) -> list[int]:
    out = []
    for i in range(0, len(vector), 8):
        byte = 0
        for j, v in enumerate(vector[i : i + 8]):
            if v > 0:
                byte |= 0x80 >> j
        out.append(byte)
    return out


def convert(vector: list[float], etype: str) -> list[float] | list[int]:
    if etype == "float":
        return vector
    if etype == "int8":
        return [round(_clip(v) * 127) for v in vector]
    if etype == "uint8":
        return [round(_clip(v) * 127) + 128 for v in vector]
    if etype == "ubinary":
        return _bits(vector)
    if etype == "binary":
        return [b - 256 if b > 127 else b for b in _bits(vector)]
    raise ValueError(etype)


def encode(values: list[float] | list[int], etype: str) -> str:
    if etype == "float":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    fmt = "b" if etype in ("int8", "binary") else "B"
    return base64.b64encode(struct.pack(f"<{len(values)}{fmt}", *values)).decode()


def response(
    vectors: list[list[float]], tokens: int, model_id: str, etype: str, fmt: str
) -> dict[str, Any]:
    data = []
    for i, v in enumerate(vectors):
        values = convert(v, etype)
        out: Any = encode(values, etype) if fmt == "base64" else values
        data.append({"object": "embedding", "index": i, "embedding": out, "embeddings": out})
    return {
        "object": "list",
        "data": data,
        "model": model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
