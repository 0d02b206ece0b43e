"""Who may do what to which org (domain.md §1 role groups, api.md §3): checked server side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from playbook_core.domain.errors import Forbidden

EDITOR_ROLES = frozenset({"brand", "brand_admin", "dispensary", "dispensary_admin"})
VIEWER_ROLES = frozenset({"brand_member", "dispensary_staff"})
SUPER_USER = "super_user"
View = Literal["brand", "dispensary", "all"]


@dataclass(frozen=True)
class Caller:
    """A verified identity: a Firebase user, or the existing app's server (`system`)."""

    uid: str
    role: str
    org_ids: frozenset[str]
    approver: bool = False
    system: bool = False

    @property
    def super_user(self) -> bool:
        return self.role == SUPER_USER


SYSTEM = Caller(uid="system", role="system", org_ids=frozenset(), system=True)


def can_see_org(caller: Caller, org_id: str) -> bool:
    return caller.system or caller.super_user or org_id in caller.org_ids


def require_org(caller: Caller, org_id: str) -> None:
    if not can_see_org(caller, org_id):
        raise Forbidden("this account does not belong to that organization")


def require_reader(caller: Caller, org_id: str) -> None:
    require_org(caller, org_id)
    if not (caller.system or caller.super_user or caller.role in EDITOR_ROLES | VIEWER_ROLES):
        raise Forbidden(f"the role '{caller.role}' cannot read playbooks")


def require_editor(caller: Caller, org_id: str) -> None:
    require_org(caller, org_id)
    if not (caller.system or caller.super_user or caller.role in EDITOR_ROLES):
        raise Forbidden(f"the role '{caller.role}' cannot change playbooks")


def require_approver(caller: Caller, org_id: str) -> None:
    require_org(caller, org_id)
    if not (caller.super_user or caller.role in EDITOR_ROLES or caller.approver):
        raise Forbidden("only approvers can decide approvals")


def require_system(caller: Caller) -> None:
    if not (caller.system or caller.super_user):
        raise Forbidden("this operation is for the system or a super user")


def default_view(caller: Caller) -> View:
    """`view=auto`: dispensary roles get tier toggles, brand roles their own, super users all."""
    if caller.super_user or caller.system:
        return "all"
    return "dispensary" if caller.role.startswith("dispensary") else "brand"
