"""Heroku-shaped JSON for each resource (shapes from the Platform API schema).

Every function takes a services view and returns what the Platform API sends; nothing here
decides anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from spruce.services.catalog import CNB_STACK, REGIONS, STACKS, DynoSize, find_size
from spruce.services.model import Backup, DynoInfo
from spruce.services.regions import GenerationInfo, Region, region_id
from spruce.services.views import (
    AddonServiceView,
    AddonView,
    AppSetupView,
    AppView,
    AttachmentView,
    BuildView,
    CollaboratorView,
    DomainView,
    FeatureView,
    FormationView,
    LogDrainView,
    OciImageView,
    PlanView,
    ReleaseView,
    SlugView,
    SniEndpointView,
    UserView,
)

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
GENERATION_IDS = {
    "cedar": "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c01",
    "fir": "b7d7c5a4-7f2a-4c61-9a0d-6c5f3a2e0c02",
}
ZERO_ID = "00000000-0000-0000-0000-000000000000"


def ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not dt.UTC:  # the store hands out UTC already: the common case is free
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
    # isoformat is C; its first 19 characters are YYYY-MM-DDTHH:MM:SS (whole seconds).
    return value.isoformat()[:19] + "Z"


def epoch_ts(seconds: float) -> str | None:
    return ts(dt.datetime.fromtimestamp(seconds, dt.UTC))


def generation_json(name: str) -> dict[str, str]:
    return {"id": GENERATION_IDS.get(name, GENERATION_IDS["cedar"]), "name": name}


def generation_full_json(g: GenerationInfo) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "unsupported_features": list(g.unsupported_features),
        "created_at": ts(EPOCH),
        "updated_at": ts(EPOCH),
    }


def region_json(name: str, known: Region | None = None) -> dict[str, Any]:
    """A region; Common Runtime ones from the catalog, the operator's from `known`."""
    if known is not None:
        return {
            **dataclasses.asdict(known),
            "created_at": ts(EPOCH),
            "updated_at": ts(EPOCH),
        }
    r = next(r for r in REGIONS if r["name"] == name)
    return {**r, "created_at": ts(EPOCH), "updated_at": ts(EPOCH)}


def stack_json(name: str) -> dict[str, Any]:
    st = next(s for s in [*STACKS, CNB_STACK] if s["name"] == name)
    return {**st, "created_at": ts(EPOCH), "updated_at": ts(EPOCH)}


def ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": obj["id"], "name": obj["name"]}


# Listings repeat a few regions and stacks a thousand times: their refs are made once.
_REGION_REFS = {str(r["name"]): {"id": r["id"], "name": r["name"]} for r in REGIONS}
_STACK_REFS = {str(st["name"]): {"id": st["id"], "name": st["name"]} for st in STACKS}


def _region_ref(name: str) -> dict[str, Any]:
    return dict(_REGION_REFS.get(name) or {"id": region_id(name), "name": name})


def _stack_ref(name: str) -> dict[str, Any]:
    return dict(_STACK_REFS.get(name) or ref(stack_json(name)))


def account_json(user: UserView) -> dict[str, Any]:
    return {
        "allow_tracking": False,
        "beta": False,
        "country_of_residence": None,
        "created_at": ts(user.created_at),
        "default_organization": None,
        "default_team": None,
        "delinquent_at": None,
        "email": user.email,
        "federated": False,
        "id": user.id,
        "identity_provider": None,
        "last_login": ts(user.last_login),
        "name": user.name,
        "sms_number": None,
        "suspended_at": None,
        "two_factor_authentication": False,
        "updated_at": ts(user.updated_at),
        "verified": True,
    }


def app_json(app: AppView) -> dict[str, Any]:
    return {
        "acm": app.acm,
        "archived_at": None,
        "buildpack_provided_description": app.buildpack_provided_description,
        "build_stack": _stack_ref(app.build_stack),
        "created_at": ts(app.created_at),
        "generation": generation_json(app.generation),
        "git_url": app.git_url,
        "id": app.id,
        "internal_routing": None,
        "maintenance": app.maintenance,
        "name": app.name,
        "organization": {"id": app.team.id, "name": app.team.name} if app.team else None,
        "owner": {"email": app.owner_email, "id": app.owner_id},
        "region": _region_ref(app.region),
        "released_at": ts(app.released_at),
        "repo_size": app.repo_size,
        "slug_size": app.slug_size,
        "space": (
            {"id": app.space.id, "name": app.space.name, "shield": False} if app.space else None
        ),
        "stack": _stack_ref(app.stack),
        "team": {"id": app.team.id, "name": app.team.name} if app.team else None,
        "updated_at": ts(app.updated_at),
        "web_url": app.web_url,
        "spruce_settings": app.settings.as_dict(),
    } | (fir_app_fields(app) if app.generation == "fir" else {})


def fir_app_fields(app: AppView) -> dict[str, Any]:
    """Fir apps (CLI fir.d.ts): the current image's base, buildpacks and architecture."""
    image = app.image
    return {
        "base_image_name": image.base_image_name if image else None,
        "buildpacks": [dict(b) for b in image.buildpacks] if image else [],
        "current_build_architecture": image.architecture if image else None,
    }


def oci_image_json(image: OciImageView) -> dict[str, Any]:
    return {
        "id": image.id,
        "digest": image.digest,
        "architecture": image.architecture,
        "base_image_name": image.base_image_name,
        "base_top_layer": image.base_top_layer,
        "commit": image.commit,
        "commit_description": image.commit_description,
        "image_repo": image.image_repo,
        "stack": ref(CNB_STACK),
        "process_types": {k: dict(v) for k, v in image.process_types.items()},
        "buildpacks": [dict(b) for b in image.buildpacks],
        "created_at": ts(image.created_at),
        "updated_at": ts(image.updated_at),
    }


def release_json(r: ReleaseView) -> dict[str, Any]:
    return {
        "addon_plan_names": list(r.addon_plan_names),
        "app": {"id": r.app.id, "name": r.app.name},
        "created_at": ts(r.created_at),
        "current": r.current,
        "description": r.description,
        "eligible_for_rollback": r.eligible_for_rollback,
        "id": r.id,
        "output_stream_url": r.output_stream_url,
        "slug": {"id": r.slug_id} if r.slug_id else None,
        "oci_image": {"id": r.oci_image_id} if r.oci_image_id else None,
        "status": r.status,
        "updated_at": ts(r.updated_at),
        "user": {"email": r.user_email or "", "id": r.user_id or ZERO_ID},
        "version": r.version,
    }


def slug_json(slug: SlugView) -> dict[str, Any]:
    return {
        "blob": {"method": "get", "url": ""},
        "buildpack_provided_description": slug.buildpack_provided_description,
        "checksum": slug.checksum,
        "commit": slug.commit,
        "commit_description": slug.commit_description,
        "created_at": ts(slug.created_at),
        "id": slug.id,
        "process_types": dict(slug.process_types),
        "size": slug.size,
        "stack": ref(stack_json(slug.stack)),
        "updated_at": ts(slug.updated_at),
    }


def display_size(name: str) -> str:
    size = find_size(name)
    return size.display_name if size else name


def formation_json(f: FormationView) -> dict[str, Any]:
    size = find_size(f.size)
    return {
        "app": {"id": f.app.id, "name": f.app.name},
        "command": f.command,
        "created_at": ts(f.created_at),
        "dyno_size": {"id": size.id if size else None, "name": f.size},
        "id": f.id,
        "quantity": f.quantity,
        "size": display_size(f.size),
        "type": f.type,
        "updated_at": ts(f.updated_at),
    }


def dyno_size_json(s: DynoSize) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "architecture_type": "amd64",
        "architecture": "amd64",
        "compute": s.compute,
        "cost": None,
        "dedicated": s.name.startswith("performance"),
        "precise_dyno_units": float(s.dyno_units),
        "memory": s.memory_gb,
        "private_space_only": False,
        "generation": generation_json(s.generation),
    }


def feature_json(f: FeatureView) -> dict[str, Any]:
    info = f.info
    return {
        "created_at": ts(EPOCH),
        "description": info.description,
        "display_name": info.display_name,
        "doc_url": info.doc_url,
        "enabled": f.enabled,
        "feedback_email": "",
        "id": info.id,
        "name": info.name,
        "state": info.state,
        "updated_at": ts(EPOCH),
    }


def collaborator_json(c: CollaboratorView) -> dict[str, Any]:
    return {
        "app": {"id": c.app.id, "name": c.app.name},
        "created_at": ts(c.created_at),
        "id": c.id,
        "permissions": [{"name": p, "description": f"Can {p} the app"} for p in c.permissions],
        "role": c.role,
        "updated_at": ts(c.updated_at),
        "user": {"email": c.email, "federated": False, "id": c.user_id},
    }


def build_json(b: BuildView) -> dict[str, Any]:
    blob = b.source_blob
    return {
        "app": {"id": b.app_id},
        "buildpacks": [{"url": u, "name": u} for u in b.buildpacks] or None,
        "created_at": ts(b.created_at),
        "id": b.id,
        "output_stream_url": b.output_stream_url,
        "source_blob": {
            "checksum": blob.get("checksum"),
            "url": blob.get("url") or "",
            "version": blob.get("version"),
            "version_description": blob.get("version_description"),
        },
        "release": {"id": b.release_id} if b.release_id else None,
        "slug": {"id": b.slug_id} if b.slug_id else None,
        "oci_image": {"id": b.oci_image_id} if b.oci_image_id else None,
        "stack": b.stack,
        "status": b.status,
        "updated_at": ts(b.updated_at),
        "user": {"email": b.user_email or "", "id": b.user_id or ""},
    }


def setup_json(setup: AppSetupView) -> dict[str, Any]:
    postdeploy = None
    if setup.postdeploy_exit_code is not None or setup.postdeploy_output:
        postdeploy = {
            "exit_code": setup.postdeploy_exit_code,
            "output": setup.postdeploy_output or "",
        }
    b = setup.build
    return {
        "app": {"id": setup.app.id, "name": setup.app.name} if setup.app else None,
        "build": {"id": b.id, "status": b.status, "output_stream_url": b.output_stream_url}
        if b
        else None,
        "created_at": ts(setup.created_at),
        "failure_message": setup.failure_message,
        "id": setup.id,
        "manifest_errors": list(setup.manifest_errors),
        "postdeploy": postdeploy,
        "resolved_success_url": setup.resolved_success_url,
        "status": setup.status,
        "updated_at": ts(setup.updated_at),
    }


def dyno_json(d: DynoInfo, app: AppView) -> dict[str, Any]:
    return {
        "app": {"id": app.id, "name": app.name},
        "attach_url": d.attach_url,
        "command": d.command,
        "created_at": epoch_ts(d.created_at),
        "id": d.id,
        "name": d.name,
        "release": {"id": d.release_id, "version": d.release_version},
        "size": d.size,
        "state": d.state,
        "type": d.type,
        "updated_at": epoch_ts(d.updated_at),
    }


def domain_json(d: DomainView) -> dict[str, Any]:
    return {
        "acm_status": d.acm_status,
        "acm_status_reason": d.acm_status_reason,
        "app": {"id": d.app.id, "name": d.app.name},
        "cname": d.cname,
        "created_at": ts(d.created_at),
        "hostname": d.hostname,
        "id": d.id,
        "kind": d.kind,
        "sni_endpoint": {"id": d.sni_endpoint.id, "name": d.sni_endpoint.name}
        if d.sni_endpoint
        else None,
        "status": d.status,
        "updated_at": ts(d.updated_at),
    }


def sni_json(e: SniEndpointView) -> dict[str, Any]:
    c = e.cert
    return {
        "app": {"id": e.app.id, "name": e.app.name},
        "certificate_chain": e.certificate_chain,
        "created_at": ts(e.created_at),
        "display_name": None,
        "domains": list(e.domain_ids),
        "id": e.id,
        "name": e.name,
        "ssl_cert": {
            "acm": e.acm,
            "ca_signed?": not c.self_signed,
            "cert_domains": list(c.cert_domains),
            "expires_at": ts(c.expires_at),
            "id": e.id,
            "issuer": c.issuer,
            "self_signed?": c.self_signed,
            "starts_at": ts(c.starts_at),
            "subject": c.subject,
        },
        "updated_at": ts(e.updated_at),
    }


def drain_json(d: LogDrainView) -> dict[str, Any]:
    return {
        "addon": {"id": d.addon_id} if d.addon_id else None,
        "app": {"id": d.app.id, "name": d.app.name},
        "created_at": ts(d.created_at),
        "id": d.id,
        "token": d.token,
        "updated_at": ts(d.updated_at),
        "url": d.url,
    }


def service_json(svc: AddonServiceView) -> dict[str, Any]:
    return {
        "cli_plugin_name": svc.name.removeprefix("heroku-"),
        "created_at": ts(EPOCH),
        "human_name": svc.human_name,
        "id": svc.id,
        "name": svc.name,
        "state": "ga",
        "supports_multiple_installations": True,
        "supports_sharing": True,
        "updated_at": ts(EPOCH),
        "supported_generations": [generation_json("cedar")],
    }


def plan_json(p: PlanView, service_human_name: str) -> dict[str, Any]:
    limits = ", ".join(f"{k}={v}" for k, v in p.limits.items())
    return {
        "addon_service": {"id": p.service.id, "name": p.service.name},
        "compliance": None,
        "created_at": ts(EPOCH),
        "default": p.default,
        "description": f"{service_human_name} {p.human_name}",
        "human_name": p.human_name,
        "id": p.id,
        "installable_inside_private_network": False,
        "installable_outside_private_network": True,
        "name": p.name,
        "price": {"cents": 0, "contract": False, "unit": "month"},
        "space_default": False,
        "state": "public",
        "updated_at": ts(EPOCH),
        "visible": True,
        "limits": p.limits,
        "limits_summary": limits,
    }


def addon_json(a: AddonView) -> dict[str, Any]:
    return {
        "actions": [],
        "addon_service": {"id": a.service.id, "name": a.service.name},
        "app": {"id": a.app.id, "name": a.app.name},
        "billed_price": {"cents": 0, "contract": False, "unit": "month"},
        "billing_entity": {"id": a.app.id, "name": a.app.name, "type": "app"},
        "config_vars": list(a.config_var_names),
        "created_at": ts(a.created_at),
        "id": a.id,
        "name": a.name,
        "plan": {"id": a.plan.id, "name": a.plan.name},
        "provider_id": a.provider_id,
        "provision_message": None,
        "state": a.state,
        "updated_at": ts(a.updated_at),
        "web_url": a.web_url or None,
    }


def attachment_json(att: AttachmentView) -> dict[str, Any]:
    return {
        "addon": {
            "id": att.addon.id,
            "name": att.addon.name,
            "app": {"id": att.addon_app.id, "name": att.addon_app.name},
        },
        "app": {"id": att.app.id, "name": att.app.name},
        "created_at": ts(att.created_at),
        "id": att.id,
        "log_input_url": None,
        "name": att.name,
        "namespace": att.namespace,
        "updated_at": ts(att.updated_at),
        "web_url": att.web_url or None,
    }


def backup_json(b: Backup) -> dict[str, Any]:
    return dataclasses.asdict(b) | {"path": None}
