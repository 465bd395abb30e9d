"""Local GGUF models served in-process by xllamacpp (llama.cpp's server, without its HTTP).

One `xllamacpp.Server` per model, with `slots` parallel sequences decoded together by ONE
compute thread: on 2 busy cores, two threads per model were 5-10x slower (spec section 6),
while continuous batching over slots lets a short request finish beside a long one. Calls
block, so each runs on a worker thread of the model's own pool (one per slot); llama.cpp
releases the GIL while it computes. Streaming hands chunks back through the event loop; a
closed stream makes the callback answer True, which stops the generation.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..catalog import ModelSpec
from ..errors import InferenceError
from .gguf_files import resolve

_DONE = object()


def _check(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise InferenceError(500, "the model returned no answer")
    err = result.get("error")
    if isinstance(err, dict):
        code = int(err.get("code", 500))
        message = str(err.get("message", "model error"))
        if err.get("type") == "exceed_context_size_error":
            code = 400
        raise InferenceError(code if 400 <= code < 600 else 500, message)
    return result


class LocalModel:
    """Loads the GGUF and owns the model's worker threads."""

    def __init__(self, spec: ModelSpec, cache_dir: Path, embedding: bool = False) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.embedding = embedding
        self._server: Any = None
        self._pool = ThreadPoolExecutor(max_workers=spec.slots, thread_name_prefix=spec.id)
        self.path: Path | None = None

    def _load(self) -> Any:
        import xllamacpp

        self.path = resolve(self.spec.gguf, self.cache_dir)
        p = xllamacpp.CommonParams()
        p.model.path = str(self.path)
        p.n_parallel = self.spec.slots
        p.n_ctx = self.spec.context * self.spec.slots  # llama.cpp splits n_ctx among slots
        p.cpuparams.n_threads = self.spec.threads
        p.cpuparams_batch.n_threads = self.spec.threads
        p.verbosity = -1
        # xllamacpp also opens llama.cpp's own HTTP listener on loopback: lock it with a
        # key nobody knows, so the only way in is through Spruce (auth, limits, queueing)
        p.api_keys = [secrets.token_urlsafe(32)]
        if self.embedding:
            p.embedding = True
            p.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
            p.n_batch = p.n_ubatch = self.spec.context
        return xllamacpp.Server(p)

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.get_running_loop().run_in_executor(self._pool, self._load)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)
            del server
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        if self._server is None:
            raise InferenceError(503, f"model {self.spec.id} is not loaded")
        server = self._server
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, server)


class LocalChat:
    native_tools = False

    def __init__(self, spec: ModelSpec, cache_dir: Path) -> None:
        self.spec = spec
        self.model = LocalModel(spec, cache_dir)

    async def start(self) -> None:
        await self.model.start()

    async def close(self) -> None:
        await self.model.close()

    def _fix(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["model"] = self.spec.id  # llama.cpp names the file path
        obj.pop("timings", None)
        return obj

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        req = dict(body, stream=False)
        result = _check(await self.model.call(lambda s: s.handle_chat_completions(req)))
        return self._fix(result)

    async def stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        req = dict(body, stream=True, stream_options={"include_usage": True})
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return cancelled.is_set()

        def run(server: Any) -> Any:
            try:
                return server.handle_chat_completions(req, on_chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        task = asyncio.ensure_future(self.model.call(run))
        try:
            while (item := await queue.get()) is not _DONE:
                yield self._fix(_check(item))
            result = await task
            if isinstance(result, dict) and "error" in result:
                _check(result)
        finally:
            cancelled.set()
            if not task.done():
                # let the worker notice the flag and return the slot
                await asyncio.gather(task, return_exceptions=True)


class LocalEmbeddings:
    def __init__(self, spec: ModelSpec, cache_dir: Path) -> None:
        self.spec = spec
        self.model = LocalModel(spec, cache_dir, embedding=True)

    async def start(self) -> None:
        await self.model.start()

    async def close(self) -> None:
        await self.model.close()

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        req = {"input": texts}
        result = _check(await self.model.call(lambda s: s.handle_embeddings(req)))
        data = sorted(result.get("data", []), key=lambda d: d.get("index", 0))
        vectors = [list(map(float, d["embedding"])) for d in data]
        if len(vectors) != len(texts):
            raise InferenceError(500, "the model returned a wrong number of embeddings")
        usage = result.get("usage") or {}
        return vectors, int(usage.get("prompt_tokens", 0))
