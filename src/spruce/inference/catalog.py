"""The operator's model catalogue (`--models FILE`, YAML or JSON; see docs/inference.md).

    models:
      - id: smollm2-135m-instruct        # the plan is heroku-inference:<id>
        type: text-to-text               # text-to-text | text-to-embedding | text-to-image
        backend: local                   # local (xllamacpp) | upstream (OpenAI-compatible)
        gguf: builtin:smollm2            # builtin:smollm2 | builtin:minilm | /path/to.gguf
        slots: 4                         # requests generated at once (one model thread)
        context: 2048                    # tokens per slot
      - id: claude-4-5-sonnet
        type: text-to-text
        backend: upstream
        url: https://llm.example.com/v1  # the OpenAI-compatible base URL
        api_key_env: LLM_KEY             # the key is read from this environment variable
        model: big-model-name            # the upstream's model name (default: id)
        ca_file: /etc/ssl/private-ca.pem # optional: verify the upstream with this CA
        native_tools: true

The embedded default is the two local models.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TYPES = ("text-to-text", "text-to-embedding", "text-to-image")
BACKENDS = ("local", "upstream")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    id: str
    type: str
    backend: str
    regions: tuple[str, ...] = ("us",)
    # local
    gguf: str = ""
    slots: int = 4
    context: int = 2048
    threads: int = 1
    # upstream
    url: str = ""
    api_key: str = field(default="", repr=False)
    model: str = ""
    timeout: float = 300.0
    ca_file: str = ""
    """A CA bundle to verify the upstream's certificate (default: the system's)."""
    # both
    native_tools: bool = False
    """True if the model fills `tool_calls` itself; else calls are forced through a schema."""
    max_tokens: int = 1024
    """The default and the cap of max_tokens per request."""
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    """Each model resource's (key's) rate limits on the platform; 0: unlimited."""

    @property
    def upstream_model(self) -> str:
        return self.model or self.id


DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    {
        "id": "smollm2-135m-instruct",
        "type": "text-to-text",
        "backend": "local",
        "gguf": "builtin:smollm2",
        "slots": 4,
        "context": 2048,
    },
    {
        "id": "all-minilm-l6-v2",
        "type": "text-to-embedding",
        "backend": "local",
        "gguf": "builtin:minilm",
        "slots": 4,
        "context": 512,
    },
)


def _spec(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: a model is a mapping")
    known = {f for f in ModelSpec.__dataclass_fields__} | {"api_key_env"}
    unknown = set(raw) - known
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    data = dict(raw)
    mid = data.get("id")
    if not isinstance(mid, str) or not mid or not all(c.isalnum() or c in "-._" for c in mid):
        raise CatalogError(f"{where}: id must be a non-empty name of letters, digits, - . _")
    where = f"{where} ({mid})"
    if data.get("type") not in TYPES:
        raise CatalogError(f"{where}: type must be one of {', '.join(TYPES)}")
    if data.get("backend") not in BACKENDS:
        raise CatalogError(f"{where}: backend must be one of {', '.join(BACKENDS)}")
    env_name = data.pop("api_key_env", None)
    if env_name:
        if env_name not in os.environ:
            raise CatalogError(f"{where}: environment variable {env_name} is not set")
        data["api_key"] = os.environ[env_name]
    if data["backend"] == "upstream":
        url = data.get("url", "")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise CatalogError(f"{where}: an upstream model needs url: http(s)://...")
        data["url"] = url.rstrip("/")
    else:
        if data["type"] == "text-to-image":
            raise CatalogError(
                f"{where}: no local image model exists; give an upstream (backend: upstream, url)"
            )
        if not data.get("gguf"):
            raise CatalogError(f"{where}: a local model needs gguf: builtin:NAME or a path")
    for name in ("slots", "context", "threads", "max_tokens"):
        if name in data and (not isinstance(data[name], int) or data[name] < 1):
            raise CatalogError(f"{where}: {name} must be a positive integer")
    for name in ("requests_per_minute", "tokens_per_minute"):
        if name in data and (not isinstance(data[name], int) or data[name] < 0):
            raise CatalogError(f"{where}: {name} must be 0 (unlimited) or more")
    if "regions" in data:
        regions = data["regions"]
        if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
            raise CatalogError(f"{where}: regions is a list of names")
        data["regions"] = tuple(regions)
    try:
        return ModelSpec(**data)
    except TypeError as e:
        raise CatalogError(f"{where}: {e}") from None


def parse_catalog(doc: Any, where: str = "models") -> list[ModelSpec]:
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise CatalogError(f"{where}: expected a mapping with a list `models:`")
    specs = [_spec(m, f"{where}: models[{i}]") for i, m in enumerate(doc["models"])]
    seen: set[str] = set()
    for s in specs:
        if s.id in seen:
            raise CatalogError(f"{where}: model id {s.id} appears twice")
        seen.add(s.id)
    if not specs:
        raise CatalogError(f"{where}: the catalogue is empty")
    return specs


def load_catalog(path: Path | None) -> list[ModelSpec]:
    if path is None:
        return parse_catalog({"models": [dict(m) for m in DEFAULT_MODELS]}, "default catalogue")
    text = Path(path).read_text()
    try:
        doc = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise CatalogError(
            f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'YAML'}: {e}"
        ) from None
    return parse_catalog(doc, str(path))
