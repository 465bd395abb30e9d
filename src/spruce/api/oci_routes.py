"""OCI images (v6 `oci-image`): what Fir releases run."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from . import views
from .core_routes import the_app
from .http import Ctx, endpoint, paginate


async def oci_images_create(ctx: Ctx) -> Any:
    app = await ctx.off_loop(the_app, ctx)
    image = await ctx.services.oci_images.create(app.id, ctx.body)
    ctx.status = 201
    return views.oci_image_json(image)


def oci_images_list(ctx: Ctx) -> Any:
    rows = ctx.services.oci_images.list(the_app(ctx).id)
    return paginate(ctx, [views.oci_image_json(i) for i in rows], ("id", "created_at"), "id")


def oci_images_info(ctx: Ctx) -> Any:
    """By id or digest; an array, as the v6 schema's targetSchema says."""
    rows = ctx.services.oci_images.find(the_app(ctx).id, ctx.params["oci_image"])
    return [views.oci_image_json(i) for i in rows]


def routes() -> list[Route]:
    A = "/apps/{app}/oci-images"
    return [
        Route(A, endpoint(oci_images_create), methods=["POST"]),
        Route(A, endpoint(oci_images_list), methods=["GET"]),
        Route(A + "/{oci_image}", endpoint(oci_images_info), methods=["GET"]),
    ]
