"""heroku-inference: Managed Inference and Agents, one model resource per add-on.

The provider holds, per add-on, its plan (the model) and the SHA-256 of its one key; the
key itself is handed out once, in the config (`INFERENCE_KEY`), and never kept here. It
supervises one inference server process (`python -m spruce.inference serve`) for all model
resources, started when the first one exists. That process asks the platform about keys,
dynos and usage over the link socket (`spruce.inference.platform_link`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import ssl
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml

from spruce.addons.base import AddonLog, Plan, Provider, ProvisionError, UnknownAddonError
from spruce.addons.runtime import StateFile, SupervisedServer, wait_until
from spruce.certs.ca import InternalCA
from spruce.inference.catalog import CatalogError, ModelSpec, load_catalog

STANDARD = "standard"
"""The plan without a fixed model: the caller names one in each request."""
KINDS = ("chat", "embeddings", "images", "agents")


def _no_log(addon_id: str, message: str) -> None:
    pass


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def public_url(listen: tuple[str, int]) -> str:
    """What INFERENCE_URL says: no port on 443, as Heroku's AI plugin requires."""
    host, port = listen
    h = f"[{host}]" if ":" in host else host
    return f"https://{h}" if port == 443 else f"https://{h}:{port}"


def model_plans(specs: Iterable[ModelSpec]) -> tuple[Plan, ...]:
    plans = [
        Plan(s.id, s.id, {"type": s.type, "backend": s.backend}, default=i == 0)
        for i, s in enumerate(specs)
    ]
    plans.append(Plan(STANDARD, "Standard (any model, named per request)"))
    return tuple(plans)


class InferenceProvider(Provider):
    name = "heroku-inference"
    aliases = ("inference",)
    human_name = "Heroku Managed Inference and Agents"
    config_var_name = "INFERENCE"
    color_prefix = "INFERENCE"
    rotate_on_detach = True  # one key per resource: a detached app's copy must die

    def __init__(
        self,
        home: Path,
        ca: InternalCA,
        *,
        listen: tuple[str, int],
        link_path: Path,
        models: Path | None = None,
        log: AddonLog = _no_log,
        on_config_changed: Callable[[str, dict[str, str]], None] | None = None,
        ready_timeout: float = 180.0,
        python: str = sys.executable,
        serve_always: bool = False,
    ) -> None:
        self.root = Path(home) / "addons" / "inference"
        self._state = StateFile(self.root / "state.json")
        self._usage = StateFile(self.root / "usage.json")
        self._ca = ca
        self.listen = listen
        self.url = public_url(listen)
        self.link_path = link_path
        self.models_path = models
        try:
            self.specs = load_catalog(models)
        except (CatalogError, OSError) as e:
            raise OSError(f"the model catalogue: {e}") from None
        self.plans = model_plans(self.specs)
        self._log = log
        self._on_config_changed = on_config_changed
        self._ready_timeout = ready_timeout
        self._python = python
        # An operator-chosen host (--inference-host) answers from the start: Heroku's AI
        # plugin lists the models there (ai:models:list) before any model resource exists.
        self._serve_always = serve_always
        self._server: SupervisedServer | None = None
        self._lock = asyncio.Lock()
        self._grants: dict[str, str] | None = None  # key hash -> addon id

    @property
    def config_keys(self) -> tuple[str, ...]:
        return ("URL", "KEY", "MODEL_ID")

    # -- keys ----------------------------------------------------------------------------
    def addon_ids(self) -> list[str]:
        return sorted(self._state.load())

    def _entry(self, addon_id: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = self._state.load().get(addon_id)
        if entry is None:
            raise UnknownAddonError(self.name, addon_id)
        return entry

    def _put(self, addon_id: str, entry: dict[str, Any] | None) -> None:
        data = self._state.load()
        if entry is None:
            data.pop(addon_id, None)
        else:
            data[addon_id] = entry
        self._state.save(data)
        self._grants = None

    def grant(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """(add-on id, its entry) of a model key, or None (unknown or rotated away)."""
        if self._grants is None:
            self._grants = {e["key_sha256"]: a for a, e in self._state.load().items()}
        addon_id = self._grants.get(key_hash(key))
        if addon_id is None:
            return None
        entry = self._state.load().get(addon_id)
        return (addon_id, entry) if entry else None

    def spec(self, model_id: str | None) -> ModelSpec | None:
        return next((s for s in self.specs if s.id == model_id), None)

    def model_id(self, addon_id: str) -> str | None:
        plan = self._entry(addon_id)["plan"]
        return None if plan == STANDARD else str(plan)

    def _new_key(self, addon_id: str, entry: dict[str, Any]) -> dict[str, str]:
        key = f"inf-{uuid.uuid4()}"
        entry["key_sha256"] = key_hash(key)
        self._put(addon_id, entry)
        values = {"URL": self.url, "KEY": key}
        if entry["plan"] != STANDARD:
            values["MODEL_ID"] = entry["plan"]
        return values

    # -- Provider ------------------------------------------------------------------------
    async def provision(
        self,
        addon_id: str,
        plan_name: str | None,
        options: dict[str, str] | None = None,
        region: str | None = None,
    ) -> dict[str, str]:
        plan = self.plan(plan_name)
        if options:
            raise ProvisionError(f"{self.name} takes no options (got {', '.join(options)})")
        async with self._lock:
            if addon_id in self._state.load():
                raise ProvisionError(f"add-on {addon_id} already exists")
            entry = {
                "plan": plan.name,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            values = self._new_key(addon_id, entry)
            try:
                await self._ensure_server()
            except BaseException:
                self._put(addon_id, None)
                raise
            return values

    async def deprovision(self, addon_id: str) -> None:
        async with self._lock:
            self._entry(addon_id)
            self._put(addon_id, None)  # the key stops working at once (within the cache)
            usage = self._usage.load()
            if usage.pop(addon_id, None) is not None:
                self._usage.save(usage)

    async def reset_credentials(self, addon_id: str) -> dict[str, str]:
        """A new key; the old one is refused from now on."""
        async with self._lock:
            return self._new_key(addon_id, dict(self._entry(addon_id)))

    def config(self, addon_id: str) -> dict[str, str]:
        """The key is not kept: only what can be said without it."""
        entry = self._entry(addon_id)
        values = {"URL": self.url}
        if entry["plan"] != STANDARD:
            values["MODEL_ID"] = entry["plan"]
        return values

    async def change_plan(self, addon_id: str, plan_name: str) -> None:
        raise ProvisionError(
            "a model resource keeps its model: create another one with ai:models:create"
        )

    async def info(self, addon_id: str) -> list[tuple[str, str]]:
        entry = self._entry(addon_id)
        lines = [("Model", str(entry["plan"])), ("URL", self.url), ("Created", entry["created"])]
        for kind, totals in sorted(self.usage(addon_id).items()):
            lines.append(
                (
                    f"Usage ({kind})",
                    f"{totals['requests']} requests, {totals['prompt_tokens']} prompt + "
                    f"{totals['completion_tokens']} completion tokens, "
                    f"{totals['tool_calls']} tool calls",
                )
            )
        return lines

    # -- usage ---------------------------------------------------------------------------
    def record_usage(self, addon_id: str, kind: str, **counts: int) -> None:
        """Add one request to the add-on's totals (kept across restarts)."""
        if addon_id not in self._state.load():
            return
        data = self._usage.load()
        per_kind = data.setdefault(addon_id, {}).setdefault(
            kind if kind in KINDS else "chat",
            {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "tool_calls": 0},
        )
        per_kind["requests"] += 1
        for name in ("prompt_tokens", "completion_tokens", "tool_calls"):
            per_kind[name] += max(0, int(counts.get(name, 0)))
        self._usage.save(data)

    def usage(self, addon_id: str) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = self._usage.load().get(addon_id, {})
        return found

    # -- the inference server ------------------------------------------------------------
    async def start(self, addon_ids_to_run: Iterable[str]) -> None:
        self._announce_url()
        if self._serve_always or any(a in self._state.load() for a in addon_ids_to_run):
            async with self._lock:
                await self._ensure_server()

    def _announce_url(self) -> None:
        """The host moved (another --inference-host): every model resource's URL changes."""
        marker = self.root / "url"
        before = marker.read_text().strip() if marker.exists() else self.url
        if before != self.url and self._on_config_changed is not None:
            for addon_id in self.addon_ids():
                self._on_config_changed(addon_id, {"URL": self.url})
        self.root.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.url + "\n")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    @property
    def running(self) -> bool:
        return self._server is not None and not self._server.exited()

    def _write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        host = self.listen[0]
        cert, key = self.root / "server.pem", self.root / "server.key"
        self._ca.issue_to_files(cert, key, ["localhost"], [host])
        config: dict[str, Any] = {
            "listen": [f"{'[' + host + ']' if ':' in host else host}:{self.listen[1]}"],
            "certificate": str(cert),
            "private_key": str(key),
            "link": str(self.link_path),
            "cache_dir": str(self.root / "cache"),
            "log_level": "warning",
        }
        if self.models_path is not None:
            config["models"] = str(Path(self.models_path).resolve())
        path = self.root / "server.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    async def _ensure_server(self) -> None:
        if self.running:
            return
        config = self._write_config()
        log_path = self.root / "server.log"
        ctx = ssl.create_default_context(cafile=str(self._ca.cert_path))
        probe = f"{self.url}/available-models"

        async def ready() -> None:
            async def answers() -> bool:
                try:
                    async with httpx.AsyncClient(verify=ctx, timeout=2) as client:
                        return (await client.get(probe)).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(answers, self._ready_timeout, "the inference server", alive)

        def argv() -> list[str]:
            return [self._python, "-m", "spruce.inference", "serve", "--config", str(config)]

        server = SupervisedServer(
            "inference", "the inference server", argv, ready, self._log, output=log_path
        )

        def alive() -> bool:
            return not server.exited()

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models ship in wheels: no hub
        try:
            await server.start()
        except Exception as e:
            tail = _tail(log_path)
            raise ProvisionError(f"the inference server did not start: {e}{tail}") from None
        self._server = server


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n" + "\n".join(text)) if text else ""
