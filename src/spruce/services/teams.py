"""Teams, as far as spaces need them: members with a role (admin or member), team apps.

The access rule for a team app is services/app_access.py's: admins hold every permission,
members view the team's unlocked apps and hold what they are granted (or join with).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session

from spruce.store.db import Store
from spruce.store.models import App, Space, Team, TeamMember, User

from .errors import Conflict, Forbidden, InvalidParams, NotFound
from .views import Ref, UserView

TEAM_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")
ROLES = ("admin", "member")


@dataclass(frozen=True)
class TeamView:
    id: str
    name: str
    role: str | None
    """The viewer's role in the team (None for an operator who is not a member)."""
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def ref(self) -> Ref:
        return Ref(self.id, self.name)


@dataclass(frozen=True)
class TeamMemberView:
    id: str
    team: Ref
    user_id: str
    email: str
    role: str
    created_at: dt.datetime
    updated_at: dt.datetime


def member_role(s: Session | Connection, team_id: str, user_id: str) -> str | None:
    return s.scalar(
        select(TeamMember.role).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )


def team_ids_of(user_id: str, role: str | None = None) -> Select[Any]:
    """The ids of the teams a user belongs to (with `role`, if given), as a subquery."""
    q = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    return q.where(TeamMember.role == role) if role is not None else q


def _is_uuid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


class Teams:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- lookup ------------------------------------------------------------------------
    @staticmethod
    def find_row(s: Session, identity: str) -> Team:
        team = s.get(Team, identity) if _is_uuid(identity) else None
        if team is None:
            team = s.scalar(select(Team).where(Team.name == identity))
        if team is None:
            raise NotFound("Couldn't find that team.")
        return team

    @staticmethod
    def check_member(s: Session, team: Team, actor: UserView, admin: bool = False) -> str | None:
        """The actor's role; 403 for non-members (and for members when `admin`)."""
        role = member_role(s, team.id, actor.id)
        if actor.is_operator:
            return role
        if role is None:
            raise Forbidden(f"You do not have access to the team {team.name}.")
        if admin and role != "admin":
            raise Forbidden(f"Only admins of the team {team.name} can do this.")
        return role

    @staticmethod
    def _view(team: Team, role: str | None) -> TeamView:
        return TeamView(team.id, team.name, role, team.created_at, team.updated_at)

    def get(self, actor: UserView, identity: str) -> TeamView:
        with self.store.session() as s:
            team = self.find_row(s, identity)
            return self._view(team, self.check_member(s, team, actor))

    def list_for(self, actor: UserView) -> list[TeamView]:
        with self.store.session() as s:
            q = select(Team, TeamMember.role).outerjoin(
                TeamMember, (TeamMember.team_id == Team.id) & (TeamMember.user_id == actor.id)
            )
            if not actor.is_operator:
                q = q.where(TeamMember.id.is_not(None))
            return [self._view(t, role) for t, role in s.execute(q.order_by(Team.name))]

    # -- changes -----------------------------------------------------------------------
    def create(self, actor: UserView, name: object) -> TeamView:
        if not isinstance(name, str) or not TEAM_NAME_RE.match(name):
            raise InvalidParams(
                "Team name must be 3 to 64 lower case letters, digits and dashes, "
                "starting with a letter."
            )
        with self.store.session() as s:
            if s.scalar(select(Team.id).where(Team.name == name)):
                raise Conflict(f"Name {name} is already taken.")
            team = Team(name=name)
            s.add(team)
            s.flush()
            s.add(TeamMember(team_id=team.id, user_id=actor.id, role="admin"))
            s.flush()
            return self._view(team, "admin")

    def delete(self, actor: UserView, identity: str) -> TeamView:
        with self.store.session() as s:
            team = self.find_row(s, identity)
            role = self.check_member(s, team, actor, admin=True)
            if s.scalar(select(func.count()).select_from(Space).where(Space.team_id == team.id)):
                raise Conflict(f"The team {team.name} still has spaces: destroy them first.")
            if s.scalar(select(func.count()).select_from(App).where(App.team_id == team.id)):
                raise Conflict(f"The team {team.name} still has apps: destroy them first.")
            view = self._view(team, role)
            s.delete(team)
            return view

    # -- members -----------------------------------------------------------------------
    def members(self, actor: UserView, identity: str) -> list[TeamMemberView]:
        with self.store.session() as s:
            team = self.find_row(s, identity)
            self.check_member(s, team, actor)
            rows = s.execute(
                select(TeamMember, User.email)
                .join(User, User.id == TeamMember.user_id)
                .where(TeamMember.team_id == team.id)
                .order_by(User.email)
            )
            return [self._member_view(m, email, team) for m, email in rows]

    @staticmethod
    def _member_view(m: TeamMember, email: str, team: Team) -> TeamMemberView:
        return TeamMemberView(
            m.id, Ref(team.id, team.name), m.user_id, email, m.role, m.created_at, m.updated_at
        )

    def set_member(
        self, actor: UserView, identity: str, who: object, role: object, create_only: bool = False
    ) -> TeamMemberView:
        """Add a member or change a member's role (PUT /teams/{team}/members)."""
        if role not in ROLES:
            raise InvalidParams("role must be admin or member.")
        if not isinstance(who, str) or not who:
            raise InvalidParams("email (of an existing user) is required.")
        with self.store.session() as s:
            team = self.find_row(s, identity)
            self.check_member(s, team, actor, admin=True)
            user = s.get(User, who) if _is_uuid(who) else None
            if user is None:
                user = s.scalar(select(User).where(User.email == who.strip().lower()))
            if user is None:
                raise NotFound(f"Couldn't find that user ({who}).")
            member = s.scalar(
                select(TeamMember).where(
                    TeamMember.team_id == team.id, TeamMember.user_id == user.id
                )
            )
            if member is not None and create_only:
                raise Conflict(f"{user.email} is already a member of {team.name}.")
            if member is None:
                member = TeamMember(team_id=team.id, user_id=user.id, role=str(role))
                s.add(member)
            else:
                self._keep_an_admin(s, team, member, str(role))
                member.role = str(role)
            s.flush()
            return self._member_view(member, user.email, team)

    def remove_member(self, actor: UserView, identity: str, who: str) -> TeamMemberView:
        with self.store.session() as s:
            team = self.find_row(s, identity)
            role = self.check_member(s, team, actor)
            row = s.execute(
                select(TeamMember, User.email)
                .join(User, User.id == TeamMember.user_id)
                .where(TeamMember.team_id == team.id)
                .where(
                    (User.email == who.strip().lower()) | (User.id == who) | (TeamMember.id == who)
                )
            ).first()
            if row is None:
                raise NotFound(f"Couldn't find that member ({who}).")
            member, email = row
            # Members may leave; removing someone else is an admin's.
            if member.user_id != actor.id and role != "admin" and not actor.is_operator:
                raise Forbidden(f"Only admins of the team {team.name} can do this.")
            self._keep_an_admin(s, team, member, None)
            view = self._member_view(member, email, team)
            s.delete(member)
            return view

    @staticmethod
    def _keep_an_admin(s: Session, team: Team, member: TeamMember, new_role: str | None) -> None:
        if member.role != "admin" or new_role == "admin":
            return
        admins = s.scalar(
            select(func.count())
            .select_from(TeamMember)
            .where(TeamMember.team_id == team.id, TeamMember.role == "admin")
        )
        if (admins or 0) <= 1:
            raise InvalidParams(f"The team {team.name} must keep at least one admin.")
