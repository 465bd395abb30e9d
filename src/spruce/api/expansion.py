"""Heroku's `Accept-Inclusion` and `Accept-Expansion` request headers, for every resource.

Both name optional parts of a resource that a client wants in the answer, comma-separated:

- `Accept-Expansion: addon_service,plan` turns members that are references (`{id, name}`)
  into the whole resource they refer to (the add-on's plan with its price, ...);
- `Accept-Inclusion: addon:plan,config_vars` adds members the resource's schema does not
  have (`addon:plan` is the `plan` member inside the `addon` member).

Heroku's CLI relies on them: it reads `attachment.addon.plan.name` and
`attachment.config_vars` from attachments it lists or resolves, and `addon.plan.price` from
add-ons. A resource declares its `Shape` once (its JSON and the parts it offers), and every
endpoint returning that resource renders through it; names a resource does not offer are
ignored, as Heroku does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .http import Ctx

V = TypeVar("V")
Json = dict[str, Any]
Part = Callable[[Ctx, V, Json], None]
"""Adds (inclusion) or replaces (expansion) one member of a resource's JSON, in place."""

INCLUSION = "accept-inclusion"
EXPANSION = "accept-expansion"


def asked(ctx: Ctx, header: str) -> frozenset[str]:
    """The names a request's header lists (`a, b:c` -> {"a", "b:c"})."""
    raw = ctx.request.headers.get(header, "")
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


@dataclass(frozen=True)
class Shape(Generic[V]):
    """How a resource appears in the API: its JSON, and the parts clients may ask for."""

    base: Callable[[V], Json]
    inclusions: Mapping[str, Part[V]] = field(default_factory=dict)
    expansions: Mapping[str, Part[V]] = field(default_factory=dict)

    def _parts(self, ctx: Ctx) -> list[Part[V]]:
        inc, exp = asked(ctx, INCLUSION), asked(ctx, EXPANSION)
        parts = [fn for name, fn in self.expansions.items() if name in exp]
        return parts + [fn for name, fn in self.inclusions.items() if name in inc]

    def one(self, ctx: Ctx, view: V) -> Json:
        return self.many(ctx, [view])[0]

    def many(self, ctx: Ctx, views: Iterable[V]) -> list[Json]:
        parts = self._parts(ctx)
        out = []
        for view in views:
            doc = self.base(view)
            for part in parts:
                part(ctx, view, doc)
            out.append(doc)
        return out
