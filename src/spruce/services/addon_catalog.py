"""The add-on services this platform offers: providers by name, plans, attachment names."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from .errors import InvalidParams, NotFound
from .model import Plan
from .ports import AddonProvider
from .views import AddonServiceView, PlanView, Ref

COLORS = (
    "AMBER AQUA BLACK BLUE BRONZE BROWN CHARCOAL COBALT COPPER CRIMSON CYAN GOLD GRAY GREEN "
    "IVORY JADE LAVENDER LIME MAGENTA MAROON MAUVE NAVY OLIVE ONYX ORANGE PINK PUCE PURPLE RED "
    "ROSE SILVER TEAL WHITE YELLOW"
).split()


def service_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spruce:addon-service:{name}"))


def plan_id(service: str, plan: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"spruce:addon-plan:{service}:{plan}"))


def default_attachment_name(provider: AddonProvider, taken: Iterable[str]) -> str:
    """The first add-on of a service gets config_var_name (REDIS_URL, DATABASE_URL); later
    ones a colour (HEROKU_REDIS_AMBER_URL, HEROKU_POSTGRESQL_BLUE_URL), as on Heroku."""
    used = set(taken)
    if provider.config_var_name not in used:
        return provider.config_var_name
    prefix = provider.color_prefix or provider.config_var_name
    for color in COLORS:
        if f"{prefix}_{color}" not in used:
            return f"{prefix}_{color}"
    n = 2
    while f"{prefix}_{n}" in used:
        n += 1
    return f"{prefix}_{n}"


class AddonCatalog:
    def __init__(self, providers: Iterable[AddonProvider]) -> None:
        self._providers: dict[str, AddonProvider] = {}
        self._names: dict[str, str] = {}
        for p in providers:
            for n in (p.name, *p.aliases):
                if n in self._names:
                    raise ValueError(f"add-on service name {n!r} is registered twice")
                self._names[n] = p.name
            self._names[service_id(p.name)] = p.name
            self._providers[p.name] = p

    def __iter__(self) -> Iterator[AddonProvider]:
        return iter(self._providers.values())

    def provider(self, identity: str) -> AddonProvider:
        name = self._names.get(identity)
        if name is None:
            names = ", ".join(self._providers)
            raise NotFound(f"Couldn't find that add-on service ({identity}). Available: {names}.")
        return self._providers[name]

    @staticmethod
    def plan_of(provider: AddonProvider, plan_name: str | None) -> Plan:
        if plan_name is None:
            return next(p for p in provider.plans if p.default)
        for p in provider.plans:
            if plan_name in (p.name, plan_id(provider.name, p.name)):
                return p
        valid = ", ".join(p.name for p in provider.plans)
        raise InvalidParams(f"unknown plan {plan_name!r} for {provider.name}; valid plans: {valid}")

    def resolve(self, spec: object) -> tuple[AddonProvider, Plan]:
        """ "heroku-redis:mini" / "heroku-postgresql" -> (provider, plan)."""
        if not isinstance(spec, str) or not spec.strip():
            raise InvalidParams("plan is required, e.g. heroku-redis:mini.")
        service, _, plan_name = spec.strip().partition(":")
        try:
            provider = self.provider(service)
        except NotFound:
            names = ", ".join(self._providers)
            raise InvalidParams(f"unknown add-on service {service!r}; available: {names}") from None
        return provider, self.plan_of(provider, plan_name or None)

    # -- views ---------------------------------------------------------------------------
    @staticmethod
    def plan_view(provider: AddonProvider, plan: Plan) -> PlanView:
        return PlanView(
            id=plan_id(provider.name, plan.name),
            name=f"{provider.name}:{plan.name}",
            human_name=plan.human_name,
            service=Ref(service_id(provider.name), provider.name),
            default=plan.default,
            limits=dict(plan.limits),
        )

    def service_view(self, provider: AddonProvider) -> AddonServiceView:
        return AddonServiceView(
            id=service_id(provider.name),
            name=provider.name,
            human_name=provider.human_name,
            plans=tuple(self.plan_view(provider, p) for p in provider.plans),
        )

    def services(self) -> list[AddonServiceView]:
        return [self.service_view(p) for p in self]

    def service(self, identity: str) -> AddonServiceView:
        return self.service_view(self.provider(identity))

    def plan(self, service: str, identity: str) -> PlanView:
        provider = self.provider(service)
        wanted = identity.split(":")[-1]
        for p in provider.plans:
            if wanted in (p.name, plan_id(provider.name, p.name)):
                return self.plan_view(provider, p)
        raise NotFound(f"Couldn't find that plan ({identity}).")
