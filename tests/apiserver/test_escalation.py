"""RBAC escalation prevention (`arktos.apiserver.escalation`) and the node's create checks.
Pure unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from arktos.api.rbac_policy import bootstrap_policy, rule, subject, tenant_policy
from arktos.apiserver.authz import RbacIndex, User, node_create_refusal
from arktos.apiserver.escalation import MAX_ATOMS, binding_write_refusal, role_write_refusal
from tests.apiserver.test_authz import ROOT, index_of, role, role_binding

Obj = dict[str, Any]
RB = "rbac.authorization.k8s.io"
DEV = User("dev", "acme")
ACME_ADMIN = User("admin", "acme")


def cluster_role(tenant: str, name: str, rules: list[Obj]) -> Obj:
    return {"kind": "ClusterRole", "metadata": {"tenant": tenant, "name": name},
            "rules": rules}


def cluster_binding(tenant: str, name: str, ref: str) -> Obj:
    return {"kind": "ClusterRoleBinding", "metadata": {"tenant": tenant, "name": name},
            "roleRef": {"apiGroup": RB, "kind": "ClusterRole", "name": ref},
            "subjects": [subject("User", "dev")]}


@pytest.fixture
def index() -> RbacIndex:
    """`dev` of tenant acme may read pods and edit roles and bindings in namespace `team`."""
    editor = role("acme", "team", "rbac-editor", [
        rule(["get", "list"], [""], ["pods"]),
        rule(["create", "update", "patch"], [RB], ["roles", "rolebindings"]),
    ])
    return index_of(*bootstrap_policy(), *tenant_policy("acme"), editor,
                    role_binding("acme", "team", "dev-editor", "Role", "rbac-editor",
                                 [subject("User", "dev")]))


def test_a_role_with_only_held_permissions_may_be_written(index: RbacIndex) -> None:
    reader = role("acme", "team", "reader", [rule(["get"], [""], ["pods"])])
    assert role_write_refusal(index, DEV, "Role", reader) == ""


@pytest.mark.parametrize("rules", [
    [rule(["delete"], [""], ["pods"])],
    [rule(["*"], [""], ["pods"])],  # a wildcard is only covered by the same wildcard
    [rule(["get"], ["*"], ["pods"])],
    [rule(["get"], [""], ["*"])],
    [rule(["get"], [""], ["pods/log"])],
    [rule(["get"], [""], ["secrets"])],
])
def test_a_role_granting_more_than_held_is_refused(index: RbacIndex, rules: list[Obj]) -> None:
    refusal = role_write_refusal(index, DEV, "Role", role("acme", "team", "more", rules))
    assert "attempting to grant RBAC permissions not currently held" in refusal


def test_permissions_held_in_one_namespace_do_not_cover_another_or_the_tenant(
        index: RbacIndex) -> None:
    rules = [rule(["get"], [""], ["pods"])]
    assert role_write_refusal(index, DEV, "Role", role("acme", "other", "r", rules))
    assert role_write_refusal(index, DEV, "ClusterRole", cluster_role("acme", "r", rules))


def test_name_limited_permissions_cover_only_those_names() -> None:
    index = index_of(role("acme", "team", "one", [
        rule(["get"], [""], ["configmaps"], names=["a"]),
        rule(["create"], [RB], ["roles"]),
    ]), role_binding("acme", "team", "b", "Role", "one", [subject("User", "dev")]))
    named = role("acme", "team", "r", [rule(["get"], [""], ["configmaps"], names=["a"])])
    assert role_write_refusal(index, DEV, "Role", named) == ""
    unnamed = role("acme", "team", "r", [rule(["get"], [""], ["configmaps"])])
    assert role_write_refusal(index, DEV, "Role", unnamed)


def test_escalate_permits_any_role(index: RbacIndex) -> None:
    index.put("Role", role("acme", "team", "escalator",
                           [rule(["escalate"], [RB], ["roles"])]))
    index.put("RoleBinding", role_binding("acme", "team", "esc", "Role", "escalator",
                                          [subject("User", "dev")]))
    anything = role("acme", "team", "all", [rule(["*"], ["*"], ["*"])])
    assert role_write_refusal(index, DEV, "Role", anything) == ""


def test_superusers_and_tenant_admins_write_any_role_of_their_scope(index: RbacIndex) -> None:
    anything = [rule(["*"], ["*"], ["*"])]
    assert role_write_refusal(index, ROOT, "Role", role("acme", "team", "r", anything)) == ""
    assert role_write_refusal(index, ACME_ADMIN, "ClusterRole",
                              cluster_role("acme", "r", anything)) == ""


def test_huge_roles_need_escalate(index: RbacIndex) -> None:
    names = [f"n{i}" for i in range(MAX_ATOMS + 1)]
    huge = role("acme", "team", "r", [rule(["get"], [""], ["pods"], names=names)])
    assert "more than" in role_write_refusal(index, DEV, "Role", huge)


def test_binding_a_role_needs_its_permissions_or_bind(index: RbacIndex) -> None:
    index.put("Role", role("acme", "team", "reader", [rule(["get"], [""], ["pods"])]))
    index.put("Role", role("acme", "team", "deleter", [rule(["delete"], [""], ["pods"])]))
    ok = role_binding("acme", "team", "b1", "Role", "reader", [subject("User", "x")])
    assert binding_write_refusal(index, DEV, "RoleBinding", ok) == ""
    bad = role_binding("acme", "team", "b2", "Role", "deleter", [subject("User", "x")])
    assert "grants permissions not currently held" in binding_write_refusal(
        index, DEV, "RoleBinding", bad)
    admin = role_binding("acme", "team", "b3", "ClusterRole", "admin-role",
                         [subject("User", "dev")])
    assert binding_write_refusal(index, DEV, "RoleBinding", admin), "no self-promotion"
    missing = role_binding("acme", "team", "b4", "Role", "nope", [subject("User", "x")])
    assert "does not exist" in binding_write_refusal(index, DEV, "RoleBinding", missing)
    index.put("Role", role("acme", "team", "binder",
                           [rule(["bind"], [RB], ["roles"], names=["deleter"])]))
    index.put("RoleBinding", role_binding("acme", "team", "bb", "Role", "binder",
                                          [subject("User", "dev")]))
    assert binding_write_refusal(index, DEV, "RoleBinding", bad) == ""


def test_a_cluster_role_binding_needs_the_permissions_tenant_wide(index: RbacIndex) -> None:
    index.put("ClusterRole", cluster_role("acme", "reader", [rule(["get"], [""], ["pods"])]))
    binding = cluster_binding("acme", "b", "reader")
    assert binding_write_refusal(index, DEV, "ClusterRoleBinding", binding)
    assert binding_write_refusal(index, ACME_ADMIN, "ClusterRoleBinding", binding) == ""


def test_a_node_creates_only_its_own_node_and_lease() -> None:
    assert node_create_refusal("", "nodes", "n1", "n1") == ""
    assert "only create its own Node" in node_create_refusal("", "nodes", "n2", "n1")
    assert node_create_refusal("coordination.k8s.io", "leases", "n1", "n1") == ""
    assert "own Lease" in node_create_refusal("coordination.k8s.io", "leases", "n2", "n1")
    assert node_create_refusal("", "events", "anything", "n1") == ""
