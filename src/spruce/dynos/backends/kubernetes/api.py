"""A thin, typed layer over the official `kubernetes` client: raw API-shaped dicts in and
out (no model objects), so the rest of the backend reads like the API reference."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.watch
from kubernetes.client.exceptions import ApiException

# The generated client's types say little (and not the raw-dict calls used here).
client: Any = kubernetes.client
config: Any = kubernetes.config
watch: Any = kubernetes.watch

Obj = dict[str, Any]

__all__ = ["ApiException", "Kube", "Obj"]


def _json(resp: Any) -> Obj:
    data = resp.data if hasattr(resp, "data") else resp
    return dict(json.loads(data)) if data else {}


class Kube:
    """One namespace of one cluster."""

    def __init__(self, kubeconfig: Path | None, namespace: str, pool: int = 64) -> None:
        cfg = client.Configuration()
        if kubeconfig is not None:
            config.load_kube_config(str(kubeconfig), client_configuration=cfg)
        else:
            try:
                config.load_incluster_config(client_configuration=cfg)
            except config.ConfigException:
                config.load_kube_config(client_configuration=cfg)
        cfg.connection_pool_maxsize = pool  # one connection per followed log stream
        self._cfg = cfg
        self.client: Any = client.ApiClient(cfg)
        self.core: Any = client.CoreV1Api(self.client)
        self.apps: Any = client.AppsV1Api(self.client)
        self.batch: Any = client.BatchV1Api(self.client)
        self.ns = namespace

    def fresh(self) -> Kube:
        """A second client on its own connections (for a long-running watch)."""
        other = Kube.__new__(Kube)
        other._cfg, other.ns = self._cfg, self.ns
        other.client = client.ApiClient(self._cfg)
        other.core = client.CoreV1Api(other.client)
        other.apps = client.AppsV1Api(other.client)
        other.batch = client.BatchV1Api(other.client)
        return other

    def close(self) -> None:
        self.client.rest_client.pool_manager.clear()

    # -- generic verbs by kind -----------------------------------------------------------
    def _api(self, kind: str) -> tuple[Any, str]:
        return {
            "Deployment": (self.apps, "deployment"),
            "Pod": (self.core, "pod"),
            "Secret": (self.core, "secret"),
            "Job": (self.batch, "job"),
        }[kind]

    def list(self, kind: str, selector: str) -> Obj:
        api, name = self._api(kind)
        fn = getattr(api, f"list_namespaced_{name}")
        return _json(fn(self.ns, label_selector=selector, _preload_content=False))

    def get(self, kind: str, name: str) -> Obj | None:
        api, what = self._api(kind)
        try:
            return _json(
                getattr(api, f"read_namespaced_{what}")(name, self.ns, _preload_content=False)
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def create(self, body: Obj) -> Obj:
        api, what = self._api(body["kind"])
        fn = getattr(api, f"create_namespaced_{what}")
        return _json(fn(self.ns, body, _preload_content=False))

    def replace(self, body: Obj) -> Obj:
        api, what = self._api(body["kind"])
        fn = getattr(api, f"replace_namespaced_{what}")
        return _json(fn(body["metadata"]["name"], self.ns, body, _preload_content=False))

    def patch(self, kind: str, name: str, patch: Obj) -> Obj:
        api, what = self._api(kind)
        fn = getattr(api, f"patch_namespaced_{what}")
        return _json(fn(name, self.ns, patch, _preload_content=False))

    def delete(self, kind: str, name: str, grace: int | None = None) -> None:
        api, what = self._api(kind)
        body = {"propagationPolicy": "Background"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace  # type: ignore[assignment]
        try:
            getattr(api, f"delete_namespaced_{what}")(
                name, self.ns, body=body, _preload_content=False
            )
        except ApiException as e:
            if e.status != 404:
                raise

    def ensure_namespace(self) -> None:
        try:
            self.core.create_namespace(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}},
                _preload_content=False,
            )
        except ApiException as e:
            if e.status != 409:
                raise

    # -- streams -------------------------------------------------------------------------
    def watch_pods(
        self, selector: str, resource_version: str, timeout: int, stop: Callable[[], bool]
    ) -> Iterator[tuple[str, Obj]]:
        """(type, raw pod) events from resource_version on; ends after `timeout` seconds."""
        w = watch.Watch()
        for event in w.stream(
            self.core.list_namespaced_pod,
            self.ns,
            label_selector=selector,
            resource_version=resource_version,
            timeout_seconds=timeout,
            allow_watch_bookmarks=True,
            _request_timeout=timeout + 15,
        ):
            if stop():
                w.stop()
                return
            yield str(event["type"]), dict(event["raw_object"])

    def follow_log(
        self, pod: str, container: str, since_seconds: int | None, previous: bool = False
    ) -> Iterator[str]:
        """The container's output line by line, until it ends (previous: the run before)."""
        kwargs: dict[str, Any] = {"container": container, "_preload_content": False}
        if previous:
            kwargs["previous"] = True
        else:
            kwargs["follow"] = True
        if since_seconds is not None:
            kwargs["since_seconds"] = since_seconds
        resp: Any = self.core.read_namespaced_pod_log(pod, self.ns, **kwargs)
        buf = b""
        try:
            for chunk in resp.stream(4096, decode_content=False):
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for line in complete:
                    yield line.decode("utf-8", "replace")
            if buf:
                yield buf.decode("utf-8", "replace")
        finally:
            resp.release_conn()
