"""The model backend port: what the server asks of a model, whoever runs it.

Requests and answers are the OpenAI-shaped JSON bodies the API speaks (already validated by
the server). `local.py` runs GGUF models in-process with xllamacpp; `upstream.py` forwards to
an operator's OpenAI-compatible endpoint. Backends raise `errors.InferenceError`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol


class ChatBackend(Protocol):
    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A `chat.completion` for a request without `stream`."""
        ...

    def stream(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """`chat.completion.chunk`s; the last carries `usage`. Closing it cancels generation."""
        ...


class EmbeddingsBackend(Protocol):
    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """One vector per text, and the prompt tokens used."""
        ...


class ImagesBackend(Protocol):
    async def generate(self, body: dict[str, Any]) -> dict[str, Any]: ...


class Lifecycle(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...
