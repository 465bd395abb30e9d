"""The platform's client of its own inference server (services.ports.InferenceApi).

The platform calls the server as an app does: HTTPS to the model resource's INFERENCE_URL
with its INFERENCE_KEY, trusting the internal CA. One connection pool for every call; the
server's refusals (`{"error": {"message": ...}}`) become the services' errors.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from spruce.services.errors import (
    Forbidden,
    InvalidParams,
    RateLimited,
    ServiceError,
    Unavailable,
)

TIMEOUT = httpx.Timeout(300.0, connect=10.0)  # a small local model on a busy core is slow


def _refusal(status: int, message: str) -> ServiceError:
    if status in (401, 403):
        return Forbidden(message)
    if status == 429:
        return RateLimited(message)
    if status >= 500:
        return Unavailable(message)
    return InvalidParams(message)


def _message(body: Any, fallback: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or fallback)
    return fallback


class InferenceClient:
    def __init__(self, ca_file: Path) -> None:
        self._ca_file = ca_file
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            ctx = ssl.create_default_context(cafile=str(self._ca_file))
            self._http = httpx.AsyncClient(verify=ctx, timeout=TIMEOUT)
            self._loop = loop
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _post(self, url: str, key: str, path: str, body: Mapping[str, Any]) -> Any:
        try:
            r = await self._client().post(
                url.rstrip("/") + path, json=dict(body), headers={"Authorization": f"Bearer {key}"}
            )
        except httpx.HTTPError as e:
            raise Unavailable(f"The inference server could not be reached: {e}.") from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            raise _refusal(r.status_code, _message(data, f"HTTP {r.status_code}"))
        return data

    async def chat_completion(self, url: str, key: str, body: Mapping[str, Any]) -> Any:
        return await self._post(url, key, "/v1/chat/completions", {**body, "stream": False})

    async def embeddings(self, url: str, key: str, body: Mapping[str, Any]) -> Any:
        return await self._post(url, key, "/v1/embeddings", body)

    async def image(self, url: str, key: str, body: Mapping[str, Any]) -> Any:
        return await self._post(url, key, "/v1/images/generations", body)

    async def agent(self, url: str, key: str, body: Mapping[str, Any]) -> list[Any]:
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        events: list[Any] = []
        try:
            async with self._client().stream(
                "POST", url.rstrip("/") + "/v1/agents/heroku", json=dict(body), headers=headers
            ) as r:
                if r.status_code >= 400:
                    raw = await r.aread()
                    try:
                        data = json.loads(raw)
                    except ValueError:
                        data = None
                    raise _refusal(r.status_code, _message(data, f"HTTP {r.status_code}"))
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if isinstance(event, dict) and "error" in event and "object" not in event:
                        # an error after the run started comes as an event, not a status
                        raise _refusal(
                            int(event["error"].get("code") or 500), _message(event, "failed")
                        )
                    events.append(event)
        except httpx.HTTPError as e:
            raise Unavailable(f"The inference server could not be reached: {e}.") from None
        return events
