import pytest

from playbook_core.domain.access import (
    SYSTEM,
    Caller,
    can_see_org,
    default_view,
    require_approver,
    require_editor,
    require_reader,
    require_system,
)
from playbook_core.domain.errors import Forbidden


def caller(role, orgs=("org_a",), approver=False):
    return Caller(uid="u", role=role, org_ids=frozenset(orgs), approver=approver)


@pytest.mark.parametrize("role", ["brand", "brand_admin", "dispensary", "dispensary_admin"])
def test_editor_roles_edit_their_own_org_only(role):
    require_editor(caller(role), "org_a")
    with pytest.raises(Forbidden):
        require_editor(caller(role), "org_b")


@pytest.mark.parametrize("role", ["brand_member", "dispensary_staff"])
def test_viewers_read_but_never_edit(role):
    require_reader(caller(role), "org_a")
    with pytest.raises(Forbidden):
        require_editor(caller(role), "org_a")


def test_unknown_role_can_do_nothing():
    with pytest.raises(Forbidden):
        require_reader(caller("customer"), "org_a")


def test_org_ids_list_grants_several_orgs():
    multi = caller("brand", orgs=("org_a", "org_b"))
    require_editor(multi, "org_b")
    with pytest.raises(Forbidden):
        require_editor(multi, "org_c")


def test_super_user_acts_on_every_org():
    boss = caller("super_user", orgs=())
    assert can_see_org(boss, "org_z")
    require_editor(boss, "org_z")
    require_approver(boss, "org_z")
    require_system(boss)


def test_approver_claim_approves_but_does_not_edit():
    staff = caller("dispensary_staff", approver=True)
    require_approver(staff, "org_a")
    with pytest.raises(Forbidden):
        require_editor(staff, "org_a")
    with pytest.raises(Forbidden):
        require_approver(caller("dispensary_staff"), "org_a")


def test_system_calls_are_system_only():
    require_system(SYSTEM)
    with pytest.raises(Forbidden):
        require_system(caller("brand_admin"))


@pytest.mark.parametrize(
    ("role", "view"),
    [
        ("dispensary", "dispensary"),
        ("dispensary_staff", "dispensary"),
        ("brand", "brand"),
        ("brand_member", "brand"),
        ("super_user", "all"),
    ],
)
def test_auto_view_by_role(role, view):
    assert default_view(caller(role)) == view
