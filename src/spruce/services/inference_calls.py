"""Calls to an app's model resource (a heroku-inference add-on) on the caller's behalf.

The rule is the one of reading the app's config vars: whoever may see the app may read its
INFERENCE_KEY, so may use it. The call goes to the inference server the way the app's own
code (or Heroku's AI plugin) would: the attachment's `<ALIAS>_URL` with its `<ALIAS>_KEY`,
through the InferenceApi port. The key never leaves this module: not in views, not in
errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .addons import Addons
from .apps import Apps
from .errors import InvalidParams, NotFound, Unavailable
from .ports import InferenceApi
from .releases import Releases
from .views import UserView

SERVICE = "heroku-inference"
SERVICE_NAMES = (SERVICE, "inference")
"""A model resource named by its service picks the app's one model resource."""


@dataclass(frozen=True)
class ModelResource:
    app: str
    attachment: str
    addon: str
    model_id: str | None
    """None for `heroku-inference:standard` (the request names its model)."""
    url: str
    key: str = field(repr=False)


class InferenceCalls:
    def __init__(
        self, apps: Apps, addons: Addons, releases: Releases, api: InferenceApi | None
    ) -> None:
        self.apps = apps
        self.addons = addons
        self.releases = releases
        self.api = api

    def resource(self, actor: UserView, app: str, identity: str | None) -> ModelResource:
        """The model resource `identity` names on `app` (an alias such as INFERENCE, an
        add-on name or id; the service's name: the app's only one). Blocking (store)."""
        view = self.apps.get(actor, app, need="deploy")  # its key is a config var: deploy's
        ident = identity or SERVICE
        if ident in SERVICE_NAMES:
            found = [
                a
                for a in self.addons.attachments(actor, app_id=view.id)
                if self.addons.get_internal(a.addon.id).service.name == SERVICE
            ]
        else:
            try:
                found = self.addons.resolve_attachments(actor, ident, view.id, SERVICE)
            except NotFound:
                found = []
        if not found:
            raise NotFound(f"Couldn't find a model resource {ident!r} on {view.name}.")
        if len(found) > 1:
            names = ", ".join(a.name for a in found)
            raise InvalidParams(
                f"{view.name} has several model resources ({names}): name one by its alias."
            )
        att = found[0]
        config = self.releases.config(view.id)
        url, key = config.get(f"{att.name}_URL"), config.get(f"{att.name}_KEY")
        if not url or not key:
            raise InvalidParams(
                f"Model resource {att.addon.name} isn't fully provisioned on {view.name} "
                f"(no {att.name}_URL or {att.name}_KEY)."
            )
        plan_model = att.addon_plan.name.partition(":")[2]
        model = config.get(f"{att.name}_MODEL_ID") or (
            None if plan_model == "standard" else plan_model
        )
        return ModelResource(view.name, att.name, att.addon.name, model, url, key)

    async def close(self) -> None:
        if self.api is not None:
            await self.api.aclose()

    def _api(self) -> InferenceApi:
        if self.api is None:
            raise Unavailable("This platform serves no inference (heroku-inference).")
        return self.api

    def _body(self, res: ModelResource, body: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise InvalidParams("The request must be a JSON object.")
        out = dict(body)
        model = out.get("model")
        if model is None and res.model_id:
            out["model"] = res.model_id
        elif res.model_id and model != res.model_id:
            raise InvalidParams(
                f"{res.attachment} serves {res.model_id}, not {model!r}: name that model "
                "or another model resource."
            )
        return out

    async def agent(self, res: ModelResource, body: Mapping[str, Any]) -> list[Any]:
        """`ai:agents:call`: the model with the Heroku tools and MCP tools it is given."""
        return await self._api().agent(res.url, res.key, self._body(res, body))

    async def chat(self, res: ModelResource, body: Mapping[str, Any]) -> Any:
        return await self._api().chat_completion(res.url, res.key, self._body(res, body))

    async def embeddings(self, res: ModelResource, body: Mapping[str, Any]) -> Any:
        return await self._api().embeddings(res.url, res.key, self._body(res, body))

    async def image(self, res: ModelResource, body: Mapping[str, Any]) -> Any:
        return await self._api().image(res.url, res.key, self._body(res, body))
