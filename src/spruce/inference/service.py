"""The inference service without HTTP: keys, limits, fair slots, backends, usage.

Routes (server.py) and the agent loop (agents.py) both go through `InferenceService`, so an
agent's model calls count against the same key's limits and usage as direct calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import chat
from .backends import ChatBackend, EmbeddingsBackend, ImagesBackend
from .catalog import ModelSpec
from .errors import InferenceError, forbidden, invalid, unauthenticated
from .link import KeyGrant, LinkError, PlatformLink, Usage
from .scheduler import FairQueue, QueueFull, RateLimited, RateLimiter

log = logging.getLogger(__name__)


@dataclass
class ModelStats:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    first_token_seconds: float = 0.0
    streams: int = 0

    def performance(self) -> str:
        if not self.requests:
            return "no requests yet"
        parts = []
        if self.generation_seconds > 0 and self.completion_tokens:
            parts.append(f"{self.completion_tokens / self.generation_seconds:.1f} tokens/s")
        if self.streams:
            parts.append(f"first token {1000 * self.first_token_seconds / self.streams:.0f} ms")
        return ", ".join(parts) or f"{self.requests} requests"


@dataclass
class Model:
    spec: ModelSpec
    backend: Any
    queue: FairQueue
    stats: ModelStats = field(default_factory=ModelStats)
    ready: bool = False

    @property
    def native_tools(self) -> bool:
        return bool(getattr(self.backend, "native_tools", self.spec.native_tools))


def make_backend(spec: ModelSpec, cache_dir: Path) -> Any:
    if spec.backend == "upstream":
        from .backends.upstream import Upstream

        return Upstream(spec)
    from .backends.local import LocalChat, LocalEmbeddings

    if spec.type == "text-to-embedding":
        return LocalEmbeddings(spec, cache_dir)
    return LocalChat(spec, cache_dir)


class InferenceService:
    def __init__(
        self,
        link: PlatformLink,
        specs: list[ModelSpec],
        cache_dir: Path,
        max_waiting: int = 64,
        key_cache_seconds: float = 5.0,
    ) -> None:
        self.link = link
        self.models: dict[str, Model] = {}
        for spec in specs:
            slots = spec.slots if spec.backend == "local" else max(spec.slots, 16)
            self.models[spec.id] = Model(
                spec, make_backend(spec, cache_dir), FairQueue(slots, max_waiting)
            )
        self.limiter = RateLimiter()
        self.key_cache_seconds = key_cache_seconds
        self._grants: dict[str, tuple[float, KeyGrant]] = {}
        self._usage_tasks: set[asyncio.Task[None]] = set()
        self.started_at = time.time()

    async def start(self) -> None:
        # load one model at a time: two loads at once would only fight for the cores
        for m in self.models.values():
            await m.backend.start()
            m.ready = True

    async def close(self) -> None:
        for t in list(self._usage_tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 5)
        for m in self.models.values():
            await m.backend.close()

    # -- keys and models -------------------------------------------------------------
    async def authenticate(self, authorization: str | None) -> KeyGrant:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise unauthenticated()
        key = authorization[7:].strip()
        cached = self._grants.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            grant = await self.link.verify_key(key)
        except LinkError as e:
            raise InferenceError(503 if e.status >= 500 else e.status, e.message) from None
        if grant is None:
            self._grants.pop(key, None)
            raise unauthenticated()
        if len(self._grants) > 10000:
            self._grants.clear()
        self._grants[key] = (now + self.key_cache_seconds, grant)
        return grant

    def model_for(self, grant: KeyGrant, requested: Any, kind: str) -> Model:
        """The model a request may use: the key's own, or any when the plan has none."""
        if requested is not None and not isinstance(requested, str):
            raise invalid("model must be a string")
        model_id = grant.model_id or requested
        if not model_id:
            raise invalid("model is required with this model resource's plan")
        if grant.model_id and requested and requested != grant.model_id:
            raise forbidden()
        model = self.models.get(model_id)
        if model is None:
            raise InferenceError(404, f"model {model_id} is not offered here")
        if model.spec.type != kind:
            raise invalid(f"model {model_id} is a {model.spec.type} model")
        if not model.ready:
            raise InferenceError(503, f"model {model_id} is loading")
        return model

    # -- admission ---------------------------------------------------------------------
    def admit(self, grant: KeyGrant) -> dict[str, str]:
        try:
            return self.limiter.admit(grant.addon_id, grant.limits)
        except RateLimited as e:
            raise InferenceError(
                429,
                f"Rate limit exceeded ({e.what} per minute)",
                headers={"Retry-After": str(e.retry_after)},
            ) from None

    @contextlib.asynccontextmanager
    async def slot(self, model: Model, grant: KeyGrant) -> AsyncIterator[None]:
        try:
            async with model.queue.slot(grant.app_id):
                yield
        except QueueFull:
            raise InferenceError(
                503, f"model {model.spec.id} has too many requests waiting; retry shortly"
            ) from None

    def account(
        self,
        grant: KeyGrant,
        model: Model,
        kind: str,
        usage: dict[str, Any],
        started: float,
        tool_calls: int = 0,
    ) -> None:
        prompt = int(usage.get("prompt_tokens", 0) or 0)
        completion = int(usage.get("completion_tokens", 0) or 0)
        self.limiter.spend(grant.addon_id, grant.limits, prompt + completion)
        st = model.stats
        st.requests += 1
        st.prompt_tokens += prompt
        st.completion_tokens += completion
        record = Usage(
            addon_id=grant.addon_id,
            app_id=grant.app_id,
            model_id=model.spec.id,
            kind=kind,
            prompt_tokens=prompt,
            completion_tokens=completion,
            tool_calls=tool_calls,
            duration_ms=int(1000 * (time.monotonic() - started)),
        )
        task = asyncio.ensure_future(self._report(record))
        self._usage_tasks.add(task)
        task.add_done_callback(self._usage_tasks.discard)

    async def _report(self, record: Usage) -> None:
        try:
            await self.link.record_usage(record)
        except Exception as e:  # usage must never fail a request already served
            log.warning("usage report failed: %s", e)

    # -- chat --------------------------------------------------------------------------
    def _prepare(self, model: Model, req: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        forced = chat.needs_forcing(req, model.native_tools)
        if model.spec.backend == "local":
            return chat.local_request(req, model.native_tools), forced
        if forced:
            return chat.local_request(req, False), True
        return {k: v for k, v in req.items() if k != "stream"}, False

    async def complete(
        self, grant: KeyGrant, model: Model, req: dict[str, Any], kind: str = "chat"
    ) -> dict[str, Any]:
        """One whole chat completion (admission already done by the caller)."""
        started = time.monotonic()
        body, forced = self._prepare(model, req)
        backend: ChatBackend = model.backend
        async with self.slot(model, grant):
            t0 = time.monotonic()
            result = await backend.complete(body)
            model.stats.generation_seconds += time.monotonic() - t0
        if forced:
            result = chat.as_tool_call(result)
        result = chat.shape(result, model.spec.id)
        calls = sum(len(c["message"].get("tool_calls") or []) for c in result["choices"])
        self.account(grant, model, kind, result["usage"], started, tool_calls=calls)
        return result

    async def stream(
        self, grant: KeyGrant, model: Model, req: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        started = time.monotonic()
        body, forced = self._prepare(model, req)
        if forced:  # the call is decided by the whole JSON answer: generate, then replay
            result = await self.complete(grant, model, req)
            async for c in chat.chunks_of(result):
                yield c
            return
        backend: ChatBackend = model.backend
        usage: dict[str, Any] = {}
        deltas = 0
        async with self.slot(model, grant):
            t0 = time.monotonic()
            try:
                # aclosing: a client that leaves stops the generation before the slot is free
                async with contextlib.aclosing(backend.stream(body)) as chunks:
                    async for chunk in chunks:
                        if not deltas:
                            model.stats.first_token_seconds += time.monotonic() - t0
                            model.stats.streams += 1
                        deltas += 1
                        if chunk.get("usage"):
                            usage = chunk["usage"]
                        chunk["model"] = model.spec.id
                        yield chunk
            finally:
                model.stats.generation_seconds += time.monotonic() - t0
                if not usage:  # cut short: count what was sent (a chunk is about a token)
                    usage = {"completion_tokens": max(0, deltas - 1)}
                self.account(grant, model, "chat", usage, started)

    # -- embeddings and images ----------------------------------------------------------
    async def embed(
        self, grant: KeyGrant, model: Model, texts: list[str]
    ) -> tuple[list[list[float]], int]:
        started = time.monotonic()
        backend: EmbeddingsBackend = model.backend
        async with self.slot(model, grant):
            t0 = time.monotonic()
            vectors, tokens = await backend.embed(texts)
            model.stats.generation_seconds += time.monotonic() - t0
        self.account(grant, model, "embeddings", {"prompt_tokens": tokens}, started)
        return vectors, tokens

    async def generate_image(
        self, grant: KeyGrant, model: Model, body: dict[str, Any]
    ) -> dict[str, Any]:
        started = time.monotonic()
        backend: ImagesBackend = model.backend
        async with self.slot(model, grant):
            result = await backend.generate(dict(body, model=model.spec.id))
        self.account(grant, model, "images", {}, started)
        return result

    def image_model(self, grant: KeyGrant, requested: Any) -> Model:
        if not any(m.spec.type == "text-to-image" for m in self.models.values()):
            raise InferenceError(
                400,
                "No image model is configured on this inference server. The operator adds "
                "one to the model catalogue (spruce up --models FILE) as an entry with "
                "type: text-to-image, backend: upstream and the url of an OpenAI-compatible "
                "image endpoint.",
            )
        return self.model_for(grant, requested, "text-to-image")
