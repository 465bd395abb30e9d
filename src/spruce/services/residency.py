"""Data residency: where on this machine an app's files are kept.

An app in a space keeps everything on its region's data root (`<home>/regions/<region>`):
build work, caches, slugs, build logs, its git repository and its add-ons' data. Any other
app keeps them in the platform's home, as before regions existed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import or_, select

from spruce.store.db import Store
from spruce.store.models import App

from .regions import region_root


def app_data_root(store: Store, home: Path, app: str) -> Path:
    """The data root of the app named (or with the id) `app`: its region's root when it
    runs in a space, else the home (also for an app that does not exist)."""
    with store.session() as s:
        row = s.execute(
            select(App.space_id, App.region).where(or_(App.name == app, App.id == app))
        ).first()
    if row is None or not row[0] or not row[1]:
        return Path(home)
    return region_root(home, row[1])


def repository_of(store: Store, home: Path, app_name: str) -> Path:
    """The app's bare git repository (`git push`, pipelines:diff, review apps). A space's
    app's repository made before repositories were per region is moved to its region once
    (the same filesystem: a rename)."""
    repo = app_data_root(store, home, app_name) / "repos" / f"{app_name}.git"
    before = Path(home) / "repos" / f"{app_name}.git"
    if repo != before and not repo.exists() and before.is_dir():
        repo.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # another request moved it first
            before.rename(repo)
    return repo


def app_region(store: Store, app_id: str) -> str | None:
    """The region of an app that runs in a space (None for any other app): which region's
    servers (its registry, say) keep the app's data."""
    with store.session() as s:
        row = s.execute(select(App.space_id, App.region).where(App.id == app_id)).first()
    return row[1] if row is not None and row[0] and row[1] else None
