"""OCI images: what a Fir build produces and a Fir release runs (Heroku's oci-image resource).

The image itself lives in the platform's registry, addressed by digest; a row here is its
metadata (process types, buildpacks, base image). Each app uses only its own images.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, OciImage, Release

from .catalog import CNB_STACK
from .errors import InvalidParams, NotFound
from .model import ImageBuildResult, ReleaseStatus
from .ports import ImageBuildRunner
from .views import FirImageSummary, OciImageView, Ref

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
PROCESS_KEY_RE = re.compile(r"^[-\w]{1,128}$")
_PROCESS_FIELDS = ("name", "display_cmd", "command", "working_dir", "default")
_TEXT_FIELDS = ("architecture", "base_image_name", "base_top_layer", "commit", "commit_description")


def image_view(row: OciImage, app: Ref) -> OciImageView:
    return OciImageView(
        id=row.id,
        app=app,
        digest=row.digest,
        architecture=row.architecture,
        base_image_name=row.base_image_name,
        base_top_layer=row.base_top_layer,
        commit=row.commit,
        commit_description=row.commit_description,
        image_repo=row.image_repo,
        process_types={k: dict(v) for k, v in (row.process_types or {}).items()},
        buildpacks=tuple(dict(b) for b in (row.buildpacks or ())),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def current_image(s: Session, app_id: str) -> OciImage | None:
    """The image of the app's current (newest succeeded) release, if it has one."""
    image_id = s.scalar(
        select(Release.oci_image_id)
        .where(Release.app_id == app_id, Release.status == ReleaseStatus.SUCCEEDED)
        .order_by(Release.version.desc())
        .limit(1)
    )
    return s.get(OciImage, image_id) if image_id else None


def image_summary(s: Session, app_id: str) -> FirImageSummary | None:
    row = current_image(s, app_id)
    if row is None:
        return None
    return FirImageSummary(
        row.base_image_name, tuple(dict(b) for b in row.buildpacks or ()), row.architecture
    )


def check_process_types(value: object) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise InvalidParams("process_types must be an object of process types.")
    out: dict[str, dict[str, Any]] = {}
    for key, spec in value.items():
        if not isinstance(key, str) or not PROCESS_KEY_RE.match(key):
            raise InvalidParams(f"Invalid process type name {key!r}.")
        if not isinstance(spec, dict):
            raise InvalidParams(f"process_types.{key} must be an object.")
        command = spec.get("command", f"/cnb/process/{key}")
        if not isinstance(command, str) or not command:
            raise InvalidParams(f"process_types.{key}.command must be a string.")
        out[key] = {
            "name": str(spec.get("name") or key),
            "display_cmd": str(spec.get("display_cmd") or command),
            "command": command,
            "working_dir": str(spec.get("working_dir") or "/workspace"),
            "default": bool(spec.get("default", False)),
        }
        unknown = set(spec) - set(_PROCESS_FIELDS)
        if unknown:
            raise InvalidParams(f"process_types.{key}: unknown fields {sorted(unknown)}.")
    return out


def check_buildpacks(value: object) -> builtins.list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, builtins.list):
        raise InvalidParams("buildpacks must be a list of {id, version, homepage}.")
    out = []
    for bp in value:
        if not isinstance(bp, dict) or not isinstance(bp.get("id"), str) or not bp["id"]:
            raise InvalidParams("Each buildpack needs an id.")
        out.append({k: str(bp.get(k) or "") for k in ("id", "version", "homepage")})
    return out


def display_commands(process_types: dict[str, dict[str, Any]]) -> dict[str, str]:
    """type -> what `ps` and the formation show (the image runs /cnb/process/<type>)."""
    return {
        k: str(v.get("display_cmd") or v.get("command") or "") for k, v in process_types.items()
    }


class OciImages:
    def __init__(self, store: Store, runner: ImageBuildRunner) -> None:
        self.store = store
        self.runner = runner

    @staticmethod
    def _ref(s: Session, app_id: str) -> Ref:
        app = s.get(App, app_id)
        if app is None:
            raise NotFound("Couldn't find that app.")
        return Ref(app.id, app.name)

    def record(
        self,
        app_id: str,
        result: ImageBuildResult,
        commit: str | None,
        commit_description: str | None,
    ) -> OciImageView:
        """A built image (the build already pushed it)."""
        with self.store.session() as s:
            ref = self._ref(s, app_id)
            row = OciImage(
                app_id=app_id,
                digest=result.digest,
                image_repo=result.image_repo,
                architecture=result.architecture,
                base_image_name=result.base_image_name,
                base_top_layer=result.base_top_layer,
                commit=commit,
                commit_description=commit_description,
                process_types=check_process_types(result.process_types),
                buildpacks=check_buildpacks(result.buildpacks),
            )
            s.add(row)
            s.flush()
            return image_view(row, ref)

    async def create(self, app_id: str, body: object) -> OciImageView:
        """POST /apps/{app}/oci-images: an image already in the app's registry repository."""
        if not isinstance(body, dict):
            raise InvalidParams("Send the oci-image's fields as a JSON object.")
        with self.store.session() as s:
            app = s.get(App, app_id)
            if app is None:
                raise NotFound("Couldn't find that app.")
            if app.generation != "fir":
                raise InvalidParams("OCI images are for Fir apps; Cedar apps deploy slugs.")
        digest = body.get("digest")
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise InvalidParams("digest must be sha256:<64 hex digits>.")
        repo = self.runner.image_repository(app_id)
        image_repo = body.get("image_repo") or repo
        if image_repo != repo:
            raise InvalidParams(f"image_repo must be this app's repository ({repo}).")
        stack = body.get("stack")
        stack_name = stack.get("name") or stack.get("id") if isinstance(stack, dict) else stack
        if stack_name not in (None, CNB_STACK["name"], CNB_STACK["id"]):
            raise InvalidParams("stack must be cnb.")
        fields: dict[str, str | None] = {}
        for name in _TEXT_FIELDS:
            value = body.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidParams(f"{name} must be a string.")
            fields[name] = value
        process_types = check_process_types(body.get("process_types") or {})
        buildpacks = check_buildpacks(body.get("buildpacks"))
        if not await self.runner.image_exists(f"{repo}@{digest}"):
            raise InvalidParams(f"The registry has no image {repo}@{digest}: push it first.")
        with self.store.session() as s:
            ref = self._ref(s, app_id)
            row = OciImage(
                app_id=app_id,
                digest=digest,
                image_repo=repo,
                architecture=fields["architecture"] or "amd64",
                base_image_name=fields["base_image_name"] or "",
                base_top_layer=fields["base_top_layer"] or "",
                commit=fields["commit"],
                commit_description=fields["commit_description"],
                process_types=process_types,
                buildpacks=buildpacks,
            )
            s.add(row)
            s.flush()
            return image_view(row, ref)

    def list(self, app_id: str) -> builtins.list[OciImageView]:
        with self.store.session() as s:
            ref = self._ref(s, app_id)
            rows = s.scalars(
                select(OciImage).where(OciImage.app_id == app_id).order_by(OciImage.created_at)
            )
            return [image_view(r, ref) for r in rows]

    def find(self, app_id: str, identity: str) -> builtins.list[OciImageView]:
        """GET /apps/{app}/oci-images/{id or digest}: an array, as the v6 schema says."""
        with self.store.session() as s:
            ref = self._ref(s, app_id)
            rows = builtins.list(
                s.scalars(
                    select(OciImage)
                    .where(
                        OciImage.app_id == app_id,
                        or_(OciImage.id == identity, OciImage.digest == identity),
                    )
                    .order_by(OciImage.created_at)
                )
            )
            if not rows:
                raise NotFound("Couldn't find that OCI image.")
            return [image_view(r, ref) for r in rows]

    def get(self, app_id: str, image_id: str) -> OciImageView:
        with self.store.session() as s:
            row = s.get(OciImage, image_id)
            if row is None or row.app_id != app_id:
                raise NotFound("Couldn't find that OCI image.")
            return image_view(row, self._ref(s, app_id))
