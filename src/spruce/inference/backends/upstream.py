"""An operator's OpenAI-compatible endpoint behind a catalogue entry (URL, key, model name).

Chat (streamed or not), embeddings and images are forwarded with the upstream's model name
and key; answers come back under the catalogue's model id. The upstream's key never leaves
this module: errors name the model, not the key.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ..catalog import ModelSpec
from ..errors import InferenceError


class Upstream:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.native_tools = spec.native_tools
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=spec.url,
            headers=headers,
            timeout=httpx.Timeout(spec.timeout, connect=10.0),
            verify=ssl.create_default_context(cafile=spec.ca_file) if spec.ca_file else True,
        )

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.aclose()

    def _body(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(body, model=self.spec.upstream_model)

    def _error(self, status: int, payload: bytes) -> InferenceError:
        message = f"the upstream of model {self.spec.id} answered HTTP {status}"
        try:
            err = json.loads(payload).get("error")
            if isinstance(err, dict) and err.get("message"):
                message = f"{message}: {err['message']}"
        except (ValueError, AttributeError):
            pass
        # client errors are the caller's; anything else is a bad gateway
        return InferenceError(status if status in (400, 413, 422, 429) else 502, message)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._client.post(path, json=self._body(body))
        except httpx.HTTPError as e:
            raise InferenceError(
                502, f"the upstream of model {self.spec.id} is unreachable: {type(e).__name__}"
            ) from None
        if resp.status_code != 200:
            raise self._error(resp.status_code, resp.content)
        try:
            data = resp.json()
        except ValueError:
            raise InferenceError(
                502, f"the upstream of model {self.spec.id} sent no JSON"
            ) from None
        if not isinstance(data, dict):
            raise InferenceError(502, f"the upstream of model {self.spec.id} sent no object")
        if "model" in data:
            data["model"] = self.spec.id
        return data

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/chat/completions", dict(body, stream=False))

    async def stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        req = self._body(dict(body, stream=True, stream_options={"include_usage": True}))
        try:
            async with self._client.stream("POST", "/chat/completions", json=req) as resp:
                if resp.status_code != 200:
                    raise self._error(resp.status_code, await resp.aread())
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise InferenceError(502, "the upstream sent a malformed event") from None
                    if isinstance(chunk, dict) and "error" in chunk:
                        raise self._error(502, data.encode())
                    chunk["model"] = self.spec.id
                    yield chunk
        except httpx.HTTPError as e:
            raise InferenceError(
                502, f"the upstream of model {self.spec.id} failed: {type(e).__name__}"
            ) from None

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        data = await self._post("/embeddings", {"input": texts})
        items = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
        vectors = [d.get("embedding") or d.get("embeddings") for d in items]
        if len(vectors) != len(texts) or not all(isinstance(v, list) for v in vectors):
            raise InferenceError(502, f"the upstream of model {self.spec.id} sent bad embeddings")
        usage = data.get("usage") or {}
        return [list(map(float, v)) for v in vectors], int(usage.get("prompt_tokens", 0))

    async def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/images/generations", body)
