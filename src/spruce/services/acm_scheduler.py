"""ACM's scheduler: takes every ACM app's domains through their lifecycle and keeps their
certificates issued, renewed and re-ordered when the app's custom domains change.

One task on the control plane's loop. A pass looks at each app with `acm` on (and at apps
with orders left to abandon): domains waiting are picked, pending and failing ones are
checked (DNS target, DNS-01 delegation, CAA) once their retry time came, then each
certificate group (services/acm_lifecycle.groups) is ordered, advanced, installed or
removed. Then the task sleeps until the next thing is due (a retry, an order's poll time,
a renewal) or until a change wakes it (domains added or removed, certs:auto:*).

The CertificateAuthority blocks (DNS, HTTPS), so every call to it runs in ONE worker thread,
one at a time (the ACME issuer is not thread-safe). Every record it returns is stored before
the next step, so a restart, even a kill -9, resumes each order from its last step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from .acm import Acm, AcmOrderState
from .acm_lifecycle import (
    Certificate,
    DnsFailed,
    DnsVerified,
    DomainAcm,
    Event,
    OrderFailed,
    Picked,
    Policy,
    certificate_group,
    due,
    groups,
    next_wakeup,
    order_events,
    order_reason,
    orderable,
)
from .acm_model import OrderRecord
from .events import AcmChanged, AppDeleting, DomainsChanged, EventBus
from .ports import CertificateAuthority

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_STEPS_PER_PASS = 20  # one order's steps before the other apps get their turn
IDLE = dt.timedelta(minutes=10)  # longest sleep with nothing due (a safety net for clocks)
AFTER_FAULT = dt.timedelta(seconds=30)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AcmScheduler:
    def __init__(
        self,
        acm: Acm,
        events: EventBus,
        authority: CertificateAuthority,
        policy: Policy,
        now: Callable[[], dt.datetime] = utcnow,
        table_settled: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`table_settled` waits until the router's table has every change made so far
        (the HTTP-01 tokens the CA is about to fetch)."""
        self.acm = acm
        self._table_settled = table_settled
        self.authority = authority
        self.policy = policy
        self._now = now
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acm")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._account_loaded = False
        self._saved_account: dict[str, Any] | None = None
        self._orphans: list[OrderRecord] = []  # orders of deleted apps, to withdraw
        events.subscribe(DomainsChanged, self.poke)
        events.subscribe(AcmChanged, self.poke)
        events.subscribe(AppDeleting, self._on_deleting)

    # -- running ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="acm")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # A step running in the thread finishes on its own; its record is not stored, and the
        # next start redoes it from the one before (each step re-reads the CA's state).
        self._executor.shutdown(wait=False, cancel_futures=True)

    def poke(self, _event: object = None) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wakeup = await self.run_once()
            except Exception:
                log.exception("ACM: a pass of the scheduler failed")
                wakeup = self._now() + AFTER_FAULT
            delay = IDLE.total_seconds()
            if wakeup is not None:
                delay = min(delay, max((wakeup - self._now()).total_seconds(), 0.05))
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run_once(self) -> dt.datetime | None:
        """One pass over every app ACM has work for; returns when the next one is due."""
        await self._load_account()
        while self._orphans:
            await self._abandon(self._orphans.pop())
        wakeups: list[dt.datetime] = []
        for app_id in sorted(set(self.acm.enabled_app_ids()) | set(self.acm.apps_with_orders())):
            try:
                when = await self._app(app_id)
            except Exception:  # one app's fault must not hold up the others
                log.exception("ACM: a pass over app %s failed", app_id)
                when = self._now() + AFTER_FAULT
            if when is not None:
                wakeups.append(when)
        return min(wakeups, default=None)

    # -- one app --------------------------------------------------------------------------------
    async def _app(self, app_id: str) -> dt.datetime | None:
        snap = self.acm.snapshot(app_id)
        if snap is None:
            return None
        if not snap.enabled:  # turned off: its orders are abandoned
            for group, order in snap.orders.items():
                await self._abandon(order.record)
                self.acm.drop_order(app_id, group)
            self.acm.remove_certificates(app_id, list(snap.certificates))
            return None
        domains = {h: d.state for h, d in snap.domains.items()}
        by_group = groups(domains)
        now = self._now()
        domains.update(
            self.acm.record_events(
                app_id, {h: Picked() for h, st in domains.items() if st.status is None}, now
            )
        )
        checks: dict[str, Event] = {}
        for host, state in domains.items():
            if state.status in ("pending", "failing") and due(state, now):
                beside = by_group[certificate_group(host, domains)]
                target = snap.domains[host].dns_target
                problem = await self._call(self.authority.problem, host, target, sorted(beside))
                checks[host] = DnsFailed(problem) if problem else DnsVerified()
        domains.update(self.acm.record_events(app_id, checks, self._now()))
        wakeups = [next_wakeup(domains, None, self.policy)]
        for group in sorted(set(by_group) | set(snap.certificates) | set(snap.orders)):
            members = {h: domains[h] for h in by_group.get(group, ())}
            wakeups.append(
                await self._group(
                    app_id,
                    group,
                    members,
                    snap.certificates.get(group),
                    snap.orders.get(group),
                )
            )
        return min((w for w in wakeups if w is not None), default=None)

    async def _group(
        self,
        app_id: str,
        group: str,
        members: Mapping[str, DomainAcm],
        current: Certificate | None,
        order: AcmOrderState | None,
    ) -> dt.datetime | None:
        """Order, advance, install or remove the app's certificate of one group."""
        record = order.record if order else None
        reason = order.reason if order else ""
        if not members:  # its domains were removed: so is its certificate
            if record is not None:
                await self._abandon(record)
                self.acm.drop_order(app_id, group)
            if current is not None:
                self.acm.remove_certificates(app_id, [group])
            return None
        wanted = orderable(members)
        if record is not None and not record.done and frozenset(record.hostnames) != wanted:
            log.info("ACM: the domains of app %s changed mid-order; ordering again", app_id)
            await self._abandon(record)
            self.acm.drop_order(app_id, group)
            record = None
        if record is None:
            now = self._now()
            why = order_reason(members, current, now, self.policy)
            if why is None:
                return next_wakeup(members, current, self.policy)
            reason = why
            try:
                record = await self._call(self.authority.begin, sorted(wanted))
            except ValueError as e:
                self.acm.record_events(app_id, {h: OrderFailed(str(e)) for h in wanted}, now)
                return self._now()
            log.info("ACM: ordering a certificate for %s (%s)", ", ".join(sorted(wanted)), why)
            self.acm.save_order(app_id, group, reason, record)
        steps = 0
        while not record.done and steps < MAX_STEPS_PER_PASS:
            if record.retry_at is not None and record.retry_at > self._now():
                break
            # The router's table takes the record's new HTTP-01 tokens (saved just before)
            # ahead of the step that asks the CA to fetch them.
            await asyncio.sleep(0)
            if self._table_settled is not None:
                await self._table_settled()
            record = await self._advance(record)
            self.acm.save_order(app_id, group, reason, record)
            steps += 1
        if record.done and record.stage == "valid":
            # Endpoint first: a domain reads "cert issued" only once its sni_endpoint is set.
            self.acm.install(app_id, group, record)
        self.acm.record_events(app_id, order_events(record), self._now())
        if not record.done:
            return record.retry_at or self._now()
        if record.stage == "valid":
            log.info("ACM: certificate issued for %s", ", ".join(record.hostnames))
        else:
            log.info(
                "ACM: the order for %s failed: %s", ", ".join(record.hostnames), record.problem
            )
        self.acm.drop_order(app_id, group)
        return self._now()  # look again: a new renewal time, or retries backing off

    # -- the authority, in its thread ------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        finally:
            self._keep_account()

    async def _advance(self, record: OrderRecord) -> OrderRecord:
        try:
            return await self._call(self.authority.advance, record)
        except Exception as e:  # e.g. the DNS server refused an update: the order fails
            log.warning("ACM: the order for %s failed: %s", ", ".join(record.hostnames), e)
            problem = str(e) or type(e).__name__
            await self._abandon(record)
            return replace(
                record,
                stage="invalid",
                publications=(),
                retry_at=None,
                problem=f"Spruce could not go on with the certificate order: {problem}",
            )

    async def _abandon(self, record: OrderRecord) -> None:
        try:
            await self._call(self.authority.abandon, record)
        except Exception as e:  # a stale challenge harms no later order
            log.warning("ACM: abandoning the order for %s: %s", ", ".join(record.hostnames), e)

    async def _load_account(self) -> None:
        if self._account_loaded:
            return
        self._account_loaded = True
        data = self.acm.account(self.authority.directory)
        if data is None:
            return
        try:
            self.authority.restore_account(data)
            self._saved_account = data
        except ValueError as e:
            log.warning("ACM: the stored account is unusable (%s); using a new one", e)

    def _keep_account(self) -> None:
        data = self.authority.account()
        if data is not None and data != self._saved_account:
            self.acm.save_account(self.authority.directory, data)
            self._saved_account = data

    def _on_deleting(self, event: AppDeleting) -> None:
        snap = self.acm.snapshot(event.app_id)
        if snap is not None and snap.orders:
            self._orphans.extend(o.record for o in snap.orders.values())
            self.poke()
