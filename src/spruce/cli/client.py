"""A small Platform API client for the CLI; errors become plain sentences."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from spruce.config import Endpoints, default_home

ACCEPT = "application/vnd.heroku+json; version=3"


class CLIError(Exception):
    """A failure to report as one sentence with a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "spruce"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def save_credentials(api_url: str, api_key: str) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"api_url": api_url, "api_key": api_key}, f)
    return path


def resolve_target() -> tuple[str, str]:
    """API URL and key: environment, then `spruce login`, then a running local home."""
    url = os.environ.get("SPRUCE_API_URL")
    key = os.environ.get("SPRUCE_API_KEY")
    if url and key:
        return url, key
    path = credentials_path()
    if path.exists():
        data = json.loads(path.read_text())
        return url or data["api_url"], key or data["api_key"]
    ep_path = default_home() / "endpoints.json"
    if ep_path.exists():
        ep = Endpoints.read(ep_path)
        return url or ep.api_url, key or ep.api_key
    raise CLIError("Not logged in. Run `spruce login` (or start the platform with `spruce up`).")


class Client:
    def __init__(self, api_url: str | None = None, api_key: str | None = None) -> None:
        if api_url is None or api_key is None:
            u, k = resolve_target()
            api_url, api_key = api_url or u, api_key or k
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={
                "Accept": ACCEPT,
                "Authorization": f"Bearer {api_key}",
                "User-Agent": "spruce-cli",
            },
            timeout=60.0,
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        try:
            resp = self._http.request(
                method,
                path,
                json=body,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.ConnectError:
            raise CLIError(
                f"Cannot reach the Spruce API at {self.api_url}. Is `spruce up` running?"
            ) from None
        except httpx.HTTPError as e:
            raise CLIError(f"The request to {self.api_url} failed: {e}") from None
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message") or resp.text
            except ValueError:
                message = resp.text or resp.reason_phrase
            raise CLIError(message.strip() or f"HTTP {resp.status_code}")
        if not resp.content:
            return None
        return resp.json()

    def get_all(self, path: str) -> list[Any]:
        """GET a list, following Next-Range like Heroku's CLI."""
        items: list[Any] = []
        headers: dict[str, str] = {}
        while True:
            try:
                resp = self._http.get(path, headers=headers)
            except httpx.ConnectError:
                raise CLIError(
                    f"Cannot reach the Spruce API at {self.api_url}. Is `spruce up` running?"
                ) from None
            if resp.status_code >= 400:
                raise CLIError(resp.json().get("message", resp.text))
            items.extend(resp.json())
            nxt = resp.headers.get("next-range")
            if resp.status_code != 206 or not nxt:
                return items
            headers = {"Range": nxt}

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)
