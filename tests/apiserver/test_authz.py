"""The tenant-aware RBAC engine (`arktos.apiserver.authz`) and its default policy. Pure unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from arktos.api.kinds import REGISTRY
from arktos.api.rbac_policy import (
    bootstrap_policy,
    cluster_role,
    cluster_role_binding,
    rule,
    subject,
    tenant_policy,
)
from arktos.api.resources import ALL_VERBS, ResourceType, Scope
from arktos.apiserver.authz import (
    Attributes,
    Decision,
    RbacIndex,
    User,
    authorize,
    describe,
    forbidden_message,
    node_name,
    url_matches,
    user_subjects,
)

Obj = dict[str, Any]
RB = "rbac.authorization.k8s.io"

ROOT = User("admin", "system", ("system:masters",))
ACME_ADMIN = User("admin", "acme")
BETA_ADMIN = User("admin", "beta")
NODE1 = User("system:node:n1", "system", ("system:nodes",))
SCHEDULER = User("system:kube-scheduler", "system")
CONTROLLERS = User("system:kube-controller-manager", "system")


# --- helpers ------------------------------------------------------------------------------

def rtype(resource: str) -> ResourceType:
    found = [t for t in REGISTRY if t.plural == resource]
    assert len(found) == 1, resource
    return found[0]


def req(user: User, verb: str, resource: str, *, ns: str = "", tenant: str | None = None,
        name: str = "", sub: str = "", bound_node: str | None = None) -> Attributes:
    """A resource request; the tenant defaults to the user's (none for cluster scope)."""
    t = rtype(resource)
    if tenant is None:
        tenant = user.tenant if t.tenanted else ""
    return Attributes(user, verb, resource, t.group, sub, name, ns, tenant, t.scope,
                      bound_node=bound_node)


def url(user: User, path: str, verb: str = "get") -> Attributes:
    return Attributes(user, verb, path=path)


def role(tenant: str, ns: str, name: str, rules: list[Obj]) -> Obj:
    return {"kind": "Role", "metadata": {"tenant": tenant, "namespace": ns, "name": name},
            "rules": rules}


def role_binding(tenant: str, ns: str, name: str, ref_kind: str, ref: str,
                 subjects: list[Obj]) -> Obj:
    return {"kind": "RoleBinding",
            "metadata": {"tenant": tenant, "namespace": ns, "name": name},
            "roleRef": {"apiGroup": RB, "kind": ref_kind, "name": ref}, "subjects": subjects}


def index_of(*objs: Obj) -> RbacIndex:
    index = RbacIndex()
    for obj in objs:
        index.put(obj["kind"], obj)
    return index


def allowed(index: RbacIndex, attrs: Attributes) -> bool:
    return authorize(index, attrs).allowed


@pytest.fixture(scope="module")
def cluster() -> RbacIndex:
    """The bootstrap policy plus two tenants created by the tenant controller."""
    return index_of(*bootstrap_policy(), *tenant_policy("acme"), *tenant_policy("beta"))


# --- tenants are strangers ----------------------------------------------------------------

def test_identical_tenant_admins_stay_in_their_own_tenant(cluster: RbacIndex) -> None:
    for me, other in ((ACME_ADMIN, "beta"), (BETA_ADMIN, "acme")):
        assert allowed(cluster, req(me, "list", "pods", ns="default"))
        assert allowed(cluster, req(me, "create", "namespaces", name="dev"))
        assert allowed(cluster, req(me, "create", "clusterrolebindings"))
        assert allowed(cluster, req(me, "delete", "secrets", ns="x", name="s"))
        assert not allowed(cluster, req(me, "list", "pods", ns="default", tenant=other))
        assert not allowed(cluster, req(me, "get", "namespaces", name="default", tenant=other))
        assert not allowed(cluster, req(me, "list", "clusterroles", tenant=other))


def test_all_tenants_are_denied_to_tenant_users_whatever_their_bindings(
        cluster: RbacIndex) -> None:
    decision = authorize(cluster, req(ACME_ADMIN, "list", "pods", tenant="all"))
    assert not decision.allowed
    assert "all tenants" in decision.reason
    assert not allowed(cluster, req(ACME_ADMIN, "watch", "deployments", tenant="all"))
    assert not allowed(cluster, req(ACME_ADMIN, "list", "pods", ns="default", tenant="all"))


def test_system_superuser_may_do_everything_everywhere(cluster: RbacIndex) -> None:
    for attrs in (req(ROOT, "list", "pods", tenant="all"),
                  req(ROOT, "delete", "pods", ns="default", tenant="acme", name="p"),
                  req(ROOT, "create", "nodes", name="n9"),
                  req(ROOT, "deletecollection", "tenants"),
                  req(ROOT, "update", "tenants", name="acme", sub="finalize"),
                  url(ROOT, "/metrics"), url(ROOT, "/debug/pprof", "post")):
        decision = authorize(cluster, attrs)
        assert decision.allowed and "superuser" in decision.reason


def test_the_superuser_group_means_nothing_outside_the_system_tenant() -> None:
    index = RbacIndex()
    masters = User("mallory", "acme", ("system:masters",))
    assert not allowed(index, req(masters, "list", "pods", ns="default"))
    assert not allowed(index, req(masters, "list", "nodes"))
    assert not allowed(index, url(masters, "/metrics"))


def test_system_bindings_grant_in_every_tenant() -> None:
    index = index_of(
        cluster_role("system", "pod-reader", [rule(["list"], [""], ["pods"])]),
        cluster_role_binding("system", "ops", "pod-reader", [subject("User", "ops")]))
    ops = User("ops", "system")
    for tenant in ("system", "acme", "beta", "all"):
        assert allowed(index, req(ops, "list", "pods", tenant=tenant))
    assert not allowed(index, req(ops, "get", "pods", ns="default", tenant="acme", name="p"))


def test_system_role_bindings_apply_in_the_system_tenant_only() -> None:
    index = index_of(
        role("system", "default", "r", [rule(["get"], [""], ["pods"])]),
        role_binding("system", "default", "rb", "Role", "r", [subject("User", "ops")]))
    ops = User("ops", "system")
    assert allowed(index, req(ops, "get", "pods", ns="default", name="p"))
    assert not allowed(index, req(ops, "get", "pods", ns="default", tenant="acme", name="p"))
    assert not allowed(index, req(ops, "get", "pods", ns="default", tenant="all", name="p"))


def test_bindings_and_roles_come_from_the_users_tenant_only() -> None:
    index = index_of(
        cluster_role("beta", "reader", [rule(["*"], ["*"], ["*"])]),
        cluster_role_binding("beta", "bob-reads", "reader", [subject("User", "bob")]),
        role_binding("acme", "dev", "uses-betas-role", "ClusterRole", "reader",
                     [subject("User", "bob")]))
    bob = User("bob", "acme")
    assert not allowed(index, req(bob, "get", "pods", ns="dev", name="p"))
    assert allowed(index, req(User("bob", "beta"), "get", "pods", ns="dev", name="p"))


def test_the_system_tenant_users_bindings_are_not_in_other_tenants() -> None:
    index = index_of(*tenant_policy("acme"))
    assert not allowed(index, req(User("admin", "system"), "list", "pods", tenant="acme"))


# --- cluster scope ------------------------------------------------------------------------

def test_cluster_scoped_resources_are_the_system_tenants(cluster: RbacIndex) -> None:
    for verb in ALL_VERBS:
        decision = authorize(cluster, req(ACME_ADMIN, verb, "nodes", name="n1"))
        assert not decision.allowed
        assert "system tenant" in decision.reason
    for verb in ALL_VERBS:
        assert not allowed(cluster, req(ACME_ADMIN, verb, "tenants", name="beta"))
    assert not allowed(cluster, req(ACME_ADMIN, "list", "tenants"))


def test_a_tenant_user_may_get_its_own_tenant_if_bound(cluster: RbacIndex) -> None:
    assert allowed(cluster, req(ACME_ADMIN, "get", "tenants", name="acme"))
    assert allowed(cluster, req(BETA_ADMIN, "get", "tenants", name="beta"))
    for verb in ("update", "patch", "delete", "watch", "list"):
        assert not allowed(cluster, req(ACME_ADMIN, verb, "tenants", name="acme"))
    assert not allowed(cluster, req(ACME_ADMIN, "get", "tenants", name="acme", sub="status"))
    assert not allowed(cluster, req(User("nobody", "acme"), "get", "tenants", name="acme"))


def test_own_tenant_get_ignores_the_request_tenant_field(cluster: RbacIndex) -> None:
    attrs = req(ACME_ADMIN, "get", "tenants", name="acme", tenant="acme")
    assert allowed(cluster, attrs)
    assert not allowed(cluster, req(ACME_ADMIN, "get", "nodes", name="n1", tenant="acme"))


# --- RBAC rules ---------------------------------------------------------------------------

@pytest.fixture()
def bob_edits_dev(cluster: RbacIndex) -> RbacIndex:
    return index_of(*tenant_policy("acme"), role_binding(
        "acme", "dev", "bob-edit", "ClusterRole", "edit", [subject("User", "bob")]))


def test_role_binding_to_a_cluster_role_applies_in_its_namespace(
        bob_edits_dev: RbacIndex) -> None:
    bob = User("bob", "acme")
    assert allowed(bob_edits_dev, req(bob, "create", "deployments", ns="dev"))
    assert allowed(bob_edits_dev, req(bob, "get", "secrets", ns="dev", name="s"))
    assert not allowed(bob_edits_dev, req(bob, "create", "deployments", ns="prod"))
    assert not allowed(bob_edits_dev, req(bob, "list", "deployments"))
    assert not allowed(bob_edits_dev, req(bob, "create", "deployments", ns="dev", tenant="beta"))
    assert not allowed(bob_edits_dev, req(bob, "create", "rolebindings", ns="dev"))
    assert not allowed(bob_edits_dev, req(bob, "list", "namespaces"))


def test_role_binding_to_a_role_uses_the_role_of_its_own_namespace() -> None:
    index = index_of(
        role("acme", "dev", "reader", [rule(["get"], [""], ["configmaps"])]),
        role("acme", "prod", "reader", [rule(["*"], ["*"], ["*"])]),
        role_binding("acme", "dev", "rb", "Role", "reader", [subject("User", "bob")]))
    bob = User("bob", "acme")
    assert allowed(index, req(bob, "get", "configmaps", ns="dev", name="c"))
    assert not allowed(index, req(bob, "delete", "configmaps", ns="dev", name="c"))
    assert not allowed(index, req(bob, "get", "configmaps", ns="prod", name="c"))


def test_cluster_role_binding_to_a_role_is_ignored() -> None:
    index = index_of(
        role("acme", "dev", "r", [rule(["*"], ["*"], ["*"])]),
        {"kind": "ClusterRoleBinding", "metadata": {"tenant": "acme", "name": "b"},
         "roleRef": {"kind": "Role", "name": "r"}, "subjects": [subject("User", "bob")]})
    assert not allowed(index, req(User("bob", "acme"), "get", "pods", ns="dev", name="p"))


@pytest.fixture()
def named() -> RbacIndex:
    rules = [rule(["get", "update", "delete", "list", "watch", "create", "deletecollection"],
                  [""], ["configmaps"], names=["cfg"])]
    return index_of(cluster_role("acme", "one-cm", rules),
                    cluster_role_binding("acme", "b", "one-cm", [subject("User", "bob")]))


@pytest.mark.parametrize(("verb", "name", "ok"), [
    ("get", "cfg", True), ("update", "cfg", True), ("delete", "cfg", True),
    ("get", "other", False), ("get", "", False), ("list", "", False), ("list", "cfg", False),
    ("watch", "cfg", False), ("create", "cfg", False), ("deletecollection", "", False),
])
def test_resource_names_grant_only_verbs_on_named_objects(
        named: RbacIndex, verb: str, name: str, ok: bool) -> None:
    bob = User("bob", "acme")
    assert allowed(named, req(bob, verb, "configmaps", ns="dev", name=name)) is ok


@pytest.mark.parametrize(("resources", "resource", "sub", "ok"), [
    (["pods"], "pods", "", True),
    (["pods"], "pods", "status", False),
    (["pods/status"], "pods", "status", True),
    (["pods/status"], "pods", "", False),
    (["pods/status"], "deployments", "status", False),
    (["*/status"], "pods", "status", True),
    (["*/status"], "deployments", "status", True),
    (["*/status"], "deployments", "scale", False),
    (["*/status"], "pods", "", False),
    (["*"], "deployments", "scale", True),
    (["pods/*"], "pods", "status", False),
])
def test_subresources_match_as_in_kubernetes(
        resources: list[str], resource: str, sub: str, ok: bool) -> None:
    index = index_of(cluster_role("acme", "r", [rule(["update"], ["*"], resources)]),
                     cluster_role_binding("acme", "b", "r", [subject("User", "bob")]))
    attrs = req(User("bob", "acme"), "update", resource, ns="dev", name="x", sub=sub)
    assert allowed(index, attrs) is ok


@pytest.mark.parametrize(("groups", "resource", "ok"), [
    ([""], "pods", True), ([""], "deployments", False), (["apps"], "deployments", True),
    (["apps"], "pods", False), (["*"], "leases", True),
])
def test_api_groups_match(groups: list[str], resource: str, ok: bool) -> None:
    index = index_of(cluster_role("acme", "r", [rule(["*"], groups, ["*"])]),
                     cluster_role_binding("acme", "b", "r", [subject("User", "bob")]))
    assert allowed(index, req(User("bob", "acme"), "list", resource, ns="d")) is ok


def test_verbs_match_exactly_or_by_star() -> None:
    index = index_of(cluster_role("acme", "r", [rule(["get", "list"], [""], ["pods"])]),
                     cluster_role("acme", "s", [rule(["*"], [""], ["services"])]),
                     cluster_role_binding("acme", "b", "r", [subject("User", "bob")]),
                     cluster_role_binding("acme", "c", "s", [subject("User", "bob")]))
    bob = User("bob", "acme")
    assert allowed(index, req(bob, "list", "pods", ns="d"))
    assert not allowed(index, req(bob, "watch", "pods", ns="d"))
    assert allowed(index, req(bob, "deletecollection", "services", ns="d"))
    assert allowed(index, req(bob, "escalate", "services", ns="d"))


def test_malformed_rules_and_subjects_grant_nothing() -> None:
    junk: list[Any] = ["junk", None, {"kind": "Robot", "name": "bob"}, {"kind": "User"},
                       {"kind": "User", "name": ""}]
    index = index_of(
        {"kind": "ClusterRole", "metadata": {"tenant": "acme", "name": "bad"},
         "rules": [{"verbs": "*", "apiGroups": ["*"], "resources": ["*"]}, "junk", None]},
        cluster_role_binding("acme", "b", "bad", [subject("User", "bob")]),
        cluster_role("acme", "good", [rule(["*"], ["*"], ["*"])]),
        cluster_role_binding("acme", "c", "good", junk),
        {"kind": "ClusterRoleBinding", "metadata": {"tenant": "acme", "name": "d"},
         "roleRef": "good", "subjects": [subject("User", "bob")]})
    for name in ("bob", "", "Robot"):
        assert not allowed(index, req(User(name, "acme"), "get", "pods", ns="d", name="p"))


# --- non-resource URLs --------------------------------------------------------------------

@pytest.fixture()
def metrics() -> RbacIndex:
    rules = [rule(["get"], urls=["/metrics", "/debug/*"])]
    return index_of(
        cluster_role("system", "metrics", rules),
        cluster_role_binding("system", "b", "metrics", [subject("User", "prom")]),
        role_binding("system", "default", "rb", "ClusterRole", "metrics",
                     [subject("User", "ns-prom")]),
        cluster_role("acme", "metrics", rules),
        cluster_role_binding("acme", "b", "metrics", [subject("User", "prom")]))


@pytest.mark.parametrize(("path", "verb", "ok"), [
    ("/metrics", "get", True), ("/metricsx", "get", False), ("/metrics/x", "get", False),
    ("/debug/pprof/heap", "get", True), ("/debug", "get", False), ("/debug/", "get", True),
    ("/metrics", "post", False),
])
def test_non_resource_urls_exact_or_prefix(
        metrics: RbacIndex, path: str, verb: str, ok: bool) -> None:
    assert allowed(metrics, url(User("prom", "system"), path, verb)) is ok


def test_non_resource_urls_need_a_cluster_role_binding_of_the_system_tenant(
        metrics: RbacIndex) -> None:
    assert not allowed(metrics, url(User("ns-prom", "system"), "/metrics"))
    decision = authorize(metrics, url(User("prom", "acme"), "/metrics"))
    assert not decision.allowed and "system tenant" in decision.reason


def test_url_patterns() -> None:
    assert url_matches(["*"], "/anything")
    assert url_matches(["/api/*"], "/api/v1")
    assert not url_matches(["/api/*"], "/apis")
    assert url_matches(["/api*"], "/apis/apps")
    assert not url_matches([], "/api")


def test_role_rules_never_carry_urls() -> None:
    index = index_of(
        {"kind": "Role", "metadata": {"tenant": "system", "namespace": "default", "name": "r"},
         "rules": [{"verbs": ["get"], "nonResourceURLs": ["*"]}]},
        cluster_role_binding("system", "b", "r", [subject("User", "x")]))
    assert not allowed(index, url(User("x", "system"), "/metrics"))


# --- built-in grants ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v2",
                                  "/openapi", "/version", "/healthz", "/livez", "/readyz"])
def test_every_authenticated_user_of_every_tenant_may_discover(path: str) -> None:
    for user in (User("nobody", "acme"), User("x", "beta"), User("y", "system")):
        for verb in ("get", "head"):
            assert allowed(RbacIndex(), url(user, path, verb))
    assert not allowed(RbacIndex(), url(User("nobody", "acme"), path, "post"))


def test_anonymous_users_get_only_public_information() -> None:
    anonymous = User("system:anonymous", "system", ("system:unauthenticated",))
    assert allowed(RbacIndex(), url(anonymous, "/healthz"))
    assert allowed(RbacIndex(), url(anonymous, "/version"))
    assert not allowed(RbacIndex(), url(anonymous, "/api"))
    assert not allowed(RbacIndex(), url(anonymous, "/metrics"))
    assert not allowed(RbacIndex(), Attributes(
        anonymous, "create", "selfsubjectaccessreviews", "authorization.k8s.io",
        scope=Scope.CLUSTER))


def test_discovery_prefixes_are_not_wildcards() -> None:
    for path in ("/apix", "/metrics", "/healthz/etcd", "/", "/logs"):
        assert not allowed(RbacIndex(), url(User("nobody", "acme"), path))


@pytest.mark.parametrize(("group", "resource"), [
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
])
def test_every_user_may_review_itself(group: str, resource: str) -> None:
    nobody = User("nobody", "acme")
    for scope, tenant in ((Scope.CLUSTER, ""), (Scope.TENANT, "acme")):
        assert allowed(RbacIndex(), Attributes(nobody, "create", resource, group,
                                               tenant=tenant, scope=scope))
    assert not allowed(RbacIndex(), Attributes(nobody, "list", resource, group,
                                               scope=Scope.CLUSTER))
    assert not allowed(RbacIndex(), Attributes(
        nobody, "create", "subjectaccessreviews", "authorization.k8s.io", scope=Scope.CLUSTER))


# --- subjects -----------------------------------------------------------------------------

def sa_index() -> RbacIndex:
    reader = [rule(["get"], [""], ["pods"])]
    return index_of(
        cluster_role("acme", "reader", reader),
        role_binding("acme", "dev", "explicit", "ClusterRole", "reader",
                     [subject("ServiceAccount", "ci", "dev")]),
        role_binding("acme", "dev", "implicit", "ClusterRole", "reader",
                     [{"kind": "ServiceAccount", "name": "builder"}]),
        cluster_role_binding("acme", "no-namespace", "reader",
                             [{"kind": "ServiceAccount", "name": "lost"}]),
        cluster_role_binding("acme", "other-ns", "reader",
                             [subject("ServiceAccount", "deployer", "prod")]))


@pytest.mark.parametrize(("name", "tenant", "ns", "ok"), [
    ("system:serviceaccount:dev:ci", "acme", "dev", True),
    ("system:serviceaccount:dev:ci", "beta", "dev", False),
    ("system:serviceaccount:dev:ci", "acme", "prod", False),
    ("system:serviceaccount:prod:ci", "acme", "dev", False),
    ("system:serviceaccount:dev:builder", "acme", "dev", True),
    ("system:serviceaccount:prod:builder", "acme", "dev", False),
    ("system:serviceaccount::lost", "acme", "dev", False),
    ("system:serviceaccount:default:lost", "acme", "default", False),
    ("system:serviceaccount:prod:deployer", "acme", "dev", True),
    ("system:serviceaccount:prod:deployer", "acme", "other", True),
    ("system:serviceaccount:prod:deployer", "system", "dev", False),
])
def test_service_accounts(name: str, tenant: str, ns: str, ok: bool) -> None:
    attrs = req(User(name, tenant), "get", "pods", ns=ns, name="p")
    assert allowed(sa_index(), attrs) is ok


def test_groups_and_the_implicit_authenticated_group() -> None:
    index = index_of(
        cluster_role("acme", "reader", [rule(["list"], [""], ["pods"])]),
        cluster_role("acme", "cm", [rule(["list"], [""], ["configmaps"])]),
        cluster_role_binding("acme", "everyone", "reader",
                             [subject("Group", "system:authenticated")]),
        cluster_role_binding("acme", "devs", "cm", [subject("Group", "devs")]))
    assert allowed(index, req(User("carol", "acme"), "list", "pods", ns="d"))
    assert not allowed(index, req(User("carol", "beta"), "list", "pods", ns="d"))
    assert not allowed(index, req(User("carol", "system"), "list", "pods", ns="d",
                                  tenant="acme"))
    assert not allowed(index, req(User("carol", "acme"), "list", "configmaps", ns="d"))
    assert allowed(index, req(User("carol", "acme", ("devs",)), "list", "configmaps", ns="d"))
    anonymous = User("system:anonymous", "acme", ("system:unauthenticated",))
    assert not allowed(index, req(anonymous, "list", "pods", ns="d"))


def test_user_subjects() -> None:
    sa = User("system:serviceaccount:dev:ci", "acme", ("g", "g"))
    assert user_subjects(sa) == (("User", sa.name), ("ServiceAccount", sa.name),
                                 ("Group", "g"), ("Group", "system:authenticated"))


# --- nodes --------------------------------------------------------------------------------

def test_node_identity() -> None:
    assert node_name(NODE1) == "n1"
    assert node_name(User("system:node:n1", "acme", ("system:nodes",))) is None
    assert node_name(User("system:node:n1", "system")) is None
    assert node_name(User("system:node:", "system", ("system:nodes",))) is None


@pytest.mark.parametrize(("attrs", "ok"), [
    (req(NODE1, "get", "nodes", name="n2"), True),
    (req(NODE1, "list", "nodes"), True),
    (req(NODE1, "watch", "pods", tenant="all"), True),
    (req(NODE1, "get", "pods", ns="default", tenant="acme", name="p"), True),
    (req(NODE1, "create", "nodes", name="n1"), True),
    (req(NODE1, "create", "nodes", name="n2"), False),
    (req(NODE1, "create", "nodes"), True),  # the name is in the body: node_create_refusal
    (req(NODE1, "update", "nodes", name="n1"), True),
    (req(NODE1, "patch", "nodes", name="n1", sub="status"), True),
    (req(NODE1, "patch", "nodes", name="n2", sub="status"), False),
    (req(NODE1, "update", "nodes", name="n2"), False),
    (req(NODE1, "delete", "nodes", name="n1"), False),
    (req(NODE1, "deletecollection", "nodes"), False),
    (req(NODE1, "update", "pods", ns="d", tenant="acme", name="p", sub="status",
         bound_node="n1"), True),
    (req(NODE1, "patch", "pods", ns="d", tenant="acme", name="p", sub="status",
         bound_node="n1"), True),
    (req(NODE1, "update", "pods", ns="d", tenant="acme", name="p", sub="status",
         bound_node="n2"), False),
    (req(NODE1, "update", "pods", ns="d", tenant="acme", name="p", sub="status"), False),
    (req(NODE1, "delete", "pods", ns="d", tenant="acme", name="p", bound_node="n1"), True),
    (req(NODE1, "delete", "pods", ns="d", tenant="acme", name="p", bound_node="n2"), False),
    (req(NODE1, "delete", "pods", ns="d", tenant="acme", name="p"), False),
    (req(NODE1, "update", "pods", ns="d", tenant="acme", name="p", bound_node="n1"), False),
    (req(NODE1, "create", "pods", ns="d", tenant="acme", bound_node="n1"), False),
    (req(NODE1, "deletecollection", "pods", ns="d", tenant="acme"), False),
    (req(NODE1, "create", "pods", ns="d", tenant="acme", name="p", sub="binding",
         bound_node="n1"), False),
    (req(NODE1, "get", "leases", ns="kube-node-lease", name="n1"), True),
    (req(NODE1, "create", "leases", ns="kube-node-lease", name="n1"), True),
    (req(NODE1, "update", "leases", ns="kube-node-lease", name="n1"), True),
    (req(NODE1, "update", "leases", ns="kube-node-lease", name="n2"), False),
    (req(NODE1, "create", "leases", ns="kube-node-lease"), True),  # named in the body
    (req(NODE1, "create", "leases", ns="kube-system"), False),
    (req(NODE1, "update", "leases", ns="kube-system", name="n1"), False),
    (req(NODE1, "update", "leases", ns="kube-node-lease", name="n1", tenant="acme"), False),
    (req(NODE1, "list", "leases", ns="kube-node-lease"), False),
    (req(NODE1, "create", "events", ns="default", tenant="acme"), True),
    (req(NODE1, "watch", "actions", tenant="all"), True),
    (req(NODE1, "update", "actions", ns="d", tenant="acme", name="a", sub="status"), True),
    (req(NODE1, "get", "secrets", ns="d", tenant="acme", name="s"), False),
    (req(NODE1, "get", "configmaps", ns="d", tenant="acme", name="c"), False),
    (req(NODE1, "get", "secrets", ns="d", tenant="acme", name="s", bound_node="n1"), True),
    (req(NODE1, "get", "configmaps", ns="d", tenant="acme", name="c", bound_node="n1"), True),
    (req(NODE1, "get", "secrets", ns="d", tenant="acme", name="s", bound_node="n2"), False),
    (req(NODE1, "list", "secrets", ns="d", tenant="acme", bound_node="n1"), False),
    (req(NODE1, "delete", "actions", ns="d", tenant="acme", name="a"), True),
    (req(NODE1, "list", "tenants"), False),
])
def test_node_rules(cluster: RbacIndex, attrs: Attributes, ok: bool) -> None:
    assert allowed(cluster, attrs) is ok


def test_node_restrictions_hold_whatever_else_is_bound() -> None:
    index = index_of(
        cluster_role("system", "all", [rule(["*"], ["*"], ["*"])]),
        cluster_role_binding("system", "nodes-all", "all", [subject("Group", "system:nodes")]))
    assert not allowed(index, req(NODE1, "update", "nodes", name="n2"))
    assert not allowed(index, req(NODE1, "delete", "pods", ns="d", tenant="acme", name="p",
                                  bound_node="n2"))
    assert not allowed(index, req(NODE1, "get", "secrets", ns="d", tenant="acme", name="s"))
    assert allowed(index, req(NODE1, "get", "secrets", ns="d", tenant="acme", name="s",
                              bound_node="n1"))


def test_nodes_outside_the_system_tenant_are_plain_tenant_users(cluster: RbacIndex) -> None:
    fake = User("system:node:n1", "acme", ("system:nodes",))
    assert not allowed(cluster, req(fake, "get", "nodes", name="n1"))
    assert not allowed(cluster, req(fake, "list", "pods", tenant="all"))
    assert not allowed(cluster, req(fake, "get", "pods", ns="d", name="p"))


def test_node_decision_names_the_restriction(cluster: RbacIndex) -> None:
    decision = authorize(cluster, req(NODE1, "update", "nodes", name="n2"))
    assert decision.reason == 'node "n1" may only create, update or patch its own Node'


# --- components ---------------------------------------------------------------------------

@pytest.mark.parametrize(("attrs", "ok"), [
    (req(SCHEDULER, "watch", "pods", tenant="all"), True),
    (req(SCHEDULER, "list", "nodes"), True),
    (req(SCHEDULER, "create", "pods", ns="d", tenant="acme", name="p", sub="binding"), True),
    (req(SCHEDULER, "patch", "pods", ns="d", tenant="acme", name="p", sub="status"), True),
    (req(SCHEDULER, "create", "events", ns="d", tenant="beta"), True),
    (req(SCHEDULER, "update", "leases", ns="kube-system", name="kube-scheduler"), True),
    (req(SCHEDULER, "delete", "pods", ns="d", tenant="acme", name="p"), False),
    (req(SCHEDULER, "update", "pods", ns="d", tenant="acme", name="p"), False),
    (req(SCHEDULER, "get", "secrets", ns="d", tenant="acme", name="s"), False),
    (req(SCHEDULER, "update", "nodes", name="n1"), False),
    (req(CONTROLLERS, "deletecollection", "pods", ns="d", tenant="acme"), True),
    (req(CONTROLLERS, "update", "tenants", name="acme", sub="finalize"), True),
    (req(CONTROLLERS, "patch", "nodes", name="n1", sub="status"), True),
    (req(CONTROLLERS, "list", "deployments", tenant="all"), True),
    (url(CONTROLLERS, "/metrics"), False),
])
def test_component_roles(cluster: RbacIndex, attrs: Attributes, ok: bool) -> None:
    assert allowed(cluster, attrs) is ok


def test_allowed_decisions_name_the_binding(cluster: RbacIndex) -> None:
    decision = authorize(cluster, req(SCHEDULER, "list", "nodes"))
    assert decision.reason == ('RBAC: allowed by ClusterRoleBinding "system:kube-scheduler" of '
                               'ClusterRole "system:kube-scheduler" to User '
                               '"system:kube-scheduler"')


# --- the tenant roles ---------------------------------------------------------------------

def tenant_user_with(role_name: str) -> tuple[RbacIndex, User]:
    index = index_of(*tenant_policy("acme"), role_binding(
        "acme", "dev", "b", "ClusterRole", role_name, [subject("User", "u")]))
    return index, User("u", "acme")


@pytest.mark.parametrize(("role_name", "verb", "resource", "sub", "ok"), [
    ("view", "list", "pods", "", True), ("view", "get", "pods", "log", True),
    ("view", "get", "deployments", "scale", True), ("view", "watch", "events", "", True),
    ("view", "get", "secrets", "", False), ("view", "get", "roles", "", False),
    ("view", "create", "pods", "", False), ("view", "get", "namespaces", "", True),
    ("edit", "create", "pods", "", True), ("edit", "delete", "secrets", "", True),
    ("edit", "update", "deployments", "scale", True), ("edit", "create", "pods", "action", True),
    ("edit", "create", "roles", "", False), ("edit", "get", "rolebindings", "", False),
    ("edit", "update", "pods", "status", False), ("edit", "create", "pods", "binding", False),
    ("admin", "create", "rolebindings", "", True), ("admin", "escalate", "roles", "", True),
    ("admin", "deletecollection", "leases", "", True),
    ("admin", "update", "deployments", "status", False),
    ("admin", "create", "namespaces", "", False), ("admin", "get", "clusterroles", "", False),
])
def test_admin_edit_view(role_name: str, verb: str, resource: str, sub: str, ok: bool) -> None:
    index, user = tenant_user_with(role_name)
    attrs = req(user, verb, resource, ns="dev", name="x", sub=sub)
    assert allowed(index, attrs) is ok


def test_admin_covers_every_namespaced_resource() -> None:
    index, user = tenant_user_with("admin")
    for t in REGISTRY:
        if t.namespaced:
            for verb in t.verbs:
                assert allowed(index, req(user, verb, t.plural, ns="dev")), (t.plural, verb)


def test_policy_objects_are_valid() -> None:
    kinds = {t.kind: t for t in REGISTRY if t.group == RB}
    objects = [*bootstrap_policy(), *tenant_policy("acme")]
    names = [(o["kind"], o["metadata"]["tenant"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))
    for obj in objects:
        t = kinds[obj["kind"]]
        assert obj["apiVersion"] == f"{RB}/v1"
        t.default(obj)
        assert t.validate(obj, None) == [], obj["metadata"]["name"]
        assert t.name_check(obj["metadata"]["name"]) == []


def test_tenant_policy_binds_the_tenant_admin_but_bootstrap_does_not() -> None:
    def bindings(objs: Iterable[Obj]) -> list[str]:
        return [o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRoleBinding"]
    assert bindings(tenant_policy("acme")) == ["admin-role-binding"]
    assert "admin-role-binding" not in bindings(bootstrap_policy())
    assert all(o["metadata"]["tenant"] == "system" for o in bootstrap_policy())
    assert not allowed(index_of(*bootstrap_policy()),
                       req(User("admin", "system"), "list", "pods", tenant="all"))


# --- the index ----------------------------------------------------------------------------

def test_index_follows_puts_and_removes() -> None:
    bob = User("bob", "acme")
    attrs = req(bob, "list", "pods", ns="d")
    reader = cluster_role("acme", "reader", [rule(["list"], [""], ["pods"])])
    binding = cluster_role_binding("acme", "b", "reader", [subject("User", "bob")])
    index = index_of(binding)
    assert not allowed(index, attrs)
    index.put("ClusterRole", reader)
    assert allowed(index, attrs)
    index.put("ClusterRoleBinding", {**binding, "subjects": [subject("User", "carol")]})
    assert not allowed(index, attrs)
    assert allowed(index, req(User("carol", "acme"), "list", "pods", ns="d"))
    index.put("ClusterRoleBinding", binding)
    index.remove("ClusterRole", reader)
    assert not allowed(index, attrs)
    index.put("ClusterRole", reader)
    index.remove("ClusterRoleBinding", binding)
    assert not allowed(index, attrs)
    assert not allowed(index, req(User("carol", "acme"), "list", "pods", ns="d"))


def test_two_bindings_for_one_subject_are_independent() -> None:
    bob = User("bob", "acme")
    objs = [cluster_role("acme", "reader", [rule(["list"], [""], ["pods"])]),
            role_binding("acme", "d", "same-name", "ClusterRole", "reader",
                         [subject("User", "bob")]),
            cluster_role_binding("acme", "same-name", "reader", [subject("User", "bob")]),
            cluster_role_binding("acme", "other", "reader", [subject("User", "bob")])]
    index = index_of(*objs)
    index.remove("ClusterRoleBinding", objs[2])
    assert allowed(index, req(bob, "list", "pods", ns="e"))
    index.remove("ClusterRoleBinding", objs[3])
    assert not allowed(index, req(bob, "list", "pods", ns="e"))
    assert allowed(index, req(bob, "list", "pods", ns="d"))


def test_build_equals_puts() -> None:
    objs = [*bootstrap_policy(), *tenant_policy("acme"), *sa_objects()]
    by_kind: dict[str, list[Obj]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    built = RbacIndex.build(by_kind.get("Role", []), by_kind.get("ClusterRole", []),
                            by_kind.get("RoleBinding", []), by_kind.get("ClusterRoleBinding", []))
    put = index_of(*objs)
    for attrs in (req(ACME_ADMIN, "list", "pods", ns="d"), req(NODE1, "list", "nodes"),
                  req(User("system:serviceaccount:dev:ci", "acme"), "get", "pods", ns="dev",
                      name="p"),
                  req(User("nobody", "acme"), "list", "pods", ns="d")):
        assert authorize(built, attrs) == authorize(put, attrs)


def sa_objects() -> list[Obj]:
    return [role("acme", "dev", "r", [rule(["get"], [""], ["pods"])]),
            role_binding("acme", "dev", "b", "Role", "r", [subject("ServiceAccount", "ci", "dev")])]


@pytest.mark.parametrize(("kind", "obj"), [
    ("Pod", {"metadata": {"tenant": "acme", "name": "x"}}),
    ("ClusterRole", {"metadata": {"name": "x"}}),
    ("ClusterRole", {"metadata": {"tenant": "acme"}}),
    ("Role", {"metadata": {"tenant": "acme", "name": "x"}}),
    ("RoleBinding", {}),
])
def test_index_refuses_what_is_not_a_stored_rbac_object(kind: str, obj: Obj) -> None:
    with pytest.raises(ValueError):
        RbacIndex().put(kind, obj)


# --- malformed requests and users ---------------------------------------------------------

@pytest.mark.parametrize("attrs", [
    req(User("admin", ""), "get", "pods", ns="d", name="p", tenant="acme"),
    req(User("admin", "all"), "list", "pods", tenant="all"),
    req(User("admin", ""), "get", "tenants", name=""),
    url(User("x", ""), "/healthz"),
    req(ACME_ADMIN, "list", "pods", ns="d", tenant=""),
    req(CONTROLLERS, "list", "pods", tenant=""),
    Attributes(ACME_ADMIN, "get", "pods", "", "", "p", "d", "acme", None),
])
def test_fail_closed(cluster: RbacIndex, attrs: Attributes) -> None:
    assert not authorize(cluster, attrs).allowed


def test_a_request_without_a_tenant_is_refused_even_to_system_users() -> None:
    index = index_of(cluster_role("system", "all", [rule(["*"], ["*"], ["*"])]),
                     cluster_role_binding("system", "ops", "all", [subject("User", "ops")]))
    ops = User("ops", "system")
    assert allowed(index, req(ops, "list", "pods", tenant="acme"))
    assert not allowed(index, req(ops, "list", "pods", tenant=""))


# --- messages -----------------------------------------------------------------------------

@pytest.mark.parametrize(("attrs", "message"), [
    (req(User("alice", "acme"), "list", "pods", ns="default"),
     ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
     'namespace "default" of tenant "acme"')),
    (req(User("alice", "acme"), "get", "deployments", ns="d", name="web", sub="scale"),
     ('deployments.apps "web" is forbidden: User "alice" cannot get resource '
     '"deployments/scale" in API group "apps" in the namespace "d" of tenant "acme"')),
    (req(User("alice", "acme"), "list", "namespaces", tenant="beta"),
     ('namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" '
     'in the tenant "beta"')),
    (req(User("alice", "acme"), "list", "pods", tenant="all"),
     ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in all '
     'tenants')),
    (req(User("alice", "acme"), "get", "nodes", name="n1"),
     ('nodes "n1" is forbidden: User "alice" cannot get resource "nodes" in API group "" at '
     'the cluster scope')),
    (url(User("alice", "acme"), "/metrics"),
     'forbidden: User "alice" cannot get path "/metrics"'),
])
def test_forbidden_message(attrs: Attributes, message: str) -> None:
    assert forbidden_message(attrs) == message


def test_describe() -> None:
    attrs = req(User("alice", "acme"), "list", "pods", tenant="all")
    assert describe(authorize(RbacIndex(), attrs)) == (
        forbidden_message(attrs) + ': a user of tenant "acme" cannot access all tenants')
    assert describe(Decision(False, "")) == "forbidden"
    assert describe(Decision(True, "superuser")) == "allowed: superuser"


# --- adversarial: tenant A against tenant B -----------------------------------------------

def _hostile_index() -> RbacIndex:
    """acme's admin holds everything acme can grant; beta grants things to acme's names."""
    everything = [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]
    mine = [subject("User", "admin"), subject("Group", "system:authenticated"),
            subject("Group", "system:masters"), subject("ServiceAccount", "admin", "default")]
    return index_of(
        *bootstrap_policy(), *tenant_policy("acme"), *tenant_policy("beta"),
        cluster_role("acme", "god", everything),
        cluster_role_binding("acme", "god", "god", mine),
        role_binding("acme", "default", "god", "ClusterRole", "god", mine),
        role("acme", "default", "god", everything[:1]),
        role_binding("acme", "default", "god-role", "Role", "god", mine))


def _requests_against(victim: str, users: Iterable[User]) -> Iterator[Attributes]:
    for user in users:
        for t in REGISTRY:
            targets = [("", "")] if t.scope is Scope.CLUSTER else [
                (victim, "default"), (victim, ""), ("all", ""), ("all", "default")]
            for verb in ALL_VERBS:
                for sub in ("", *sorted(t.subresources)):
                    for tenant, ns in targets:
                        if t.scope is not Scope.NAMESPACE and ns:
                            continue
                        for name in ("", "x", victim, "default"):
                            yield Attributes(user, verb, t.plural, t.group, sub, name, ns,
                                             tenant, t.scope, bound_node="n1")


def test_adversarial_tenant_a_gets_nothing_of_tenant_b_or_the_cluster() -> None:
    index = _hostile_index()
    attackers = [ACME_ADMIN,
                 User("admin", "acme", ("system:masters", "system:nodes", "system:authenticated")),
                 User("system:node:n1", "acme", ("system:nodes",)),
                 User("system:serviceaccount:default:admin", "acme"),
                 User("system:kube-controller-manager", "acme")]
    requests = list(_requests_against("beta", attackers))
    assert len(requests) > 10_000
    assert [a for a in requests if authorize(index, a).allowed] == []
    assert allowed(index, req(ACME_ADMIN, "delete", "pods", ns="default", name="x"))


def test_adversarial_non_resource_urls_are_closed_to_tenants() -> None:
    index = _hostile_index()
    for path in ("/metrics", "/debug/pprof", "/logs", "/", "/apix", "/healthz/etcd"):
        for verb in ("get", "post", "put", "delete"):
            assert not allowed(index, url(ACME_ADMIN, path, verb)), (path, verb)
