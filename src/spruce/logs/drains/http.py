"""HTTPS drains: batches of octet-counted frames POSTed as `application/logplex-1`."""

from __future__ import annotations

import asyncio
import ssl

import httpx

from spruce.logs.drains.base import DrainError, DrainWorker, describe
from spruce.logs.framing import http_batch, l10_frame, line_frame


class HttpDrain(DrainWorker):
    _client: httpx.AsyncClient | None = None

    def _make_client(self) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = True
        if self.url.scheme == "https":
            verify = self.ssl_context or ssl.create_default_context()
        cfg = self.config
        return httpx.AsyncClient(
            verify=verify,
            follow_redirects=False,
            timeout=httpx.Timeout(cfg.drain_write_timeout, connect=cfg.drain_connect_timeout),
            trust_env=False,
        )

    async def run_connection(self) -> None:
        cfg = self.config
        if self._client is None:
            self._client = self._make_client()
        while True:
            await self.wait_for_lines()
            lost = self.take_undelivered()
            batch = self.take_batch(cfg.drain_batch_lines)
            frames = [line_frame(line, self.spec.token) for line in batch]
            if lost is not None:
                frames.insert(0, l10_frame(self.clock(), self.spec.token, lost[0], lost[1]))
            request = http_batch(frames, self.spec.token)
            if not await self._post(request.body, request.headers):
                self.record_loss(len(batch), batch[0].ts if batch else self.clock())
                if lost is not None:
                    self.restore_undelivered(lost)
                raise DrainError(self.last_error or "drain POST failed")
            self.sent += len(batch)
            self.connected()

    async def _post(self, body: bytes, headers: dict[str, str]) -> bool:
        """POST one batch, retrying with backoff; the same body keeps the same frame id."""
        assert self._client is not None
        delay = self.config.drain_backoff_min
        for attempt in range(self.config.drain_http_attempts):
            if attempt:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.drain_backoff_max)
            try:
                response = await self._client.post(self.spec.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                self.fail(describe(exc))
                continue
            if 200 <= response.status_code < 300:
                return True
            self.fail(f"drain answered HTTP {response.status_code}")
        return False

    async def close_transport(self) -> None:
        # Keep the client (and its pool) across retries; only close it when stopping.
        if self.state == "stopped" and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
