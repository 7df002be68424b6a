"""Tenant-aware RBAC: may this user do this request? Pure: no I/O here.

Arktos' RBAC (§1.9 of the tenancy reference) looks bindings up in the caller's tenant and
refuses non-system callers any tenant but their own. It left cluster-scoped objects (nodes,
tenants) readable by any tenant admin holding `*`; this engine closes that. `authorize` decides
in this order, the first step that decides wins:

1. a user without a usable tenant is denied everything;
2. group `system:masters` of the `system` tenant may do everything (superuser);
3. built-in grants every user has in every tenant, instead of one binding per tenant:
   health and version paths (everyone), discovery paths and self reviews (authenticated users);
4. non-resource URLs: granted only by ClusterRoles bound with ClusterRoleBindings, and only to
   `system`-tenant users (the paths are cluster-wide, not a tenant's);
5. the tenant gate: a non-system user may act only in its own tenant (never `all`, never another)
   and on no cluster-scoped resource except `get` of its own Tenant object;
6. RBAC in the user's tenant: its ClusterRoleBindings apply tenant-wide (for the `system`
   tenant: in every tenant), RoleBindings only in their own namespace of their own tenant;
7. nodes (`system:node:<name>` in group `system:nodes`): whatever RBAC allows is narrowed to
   their own Node, their own Lease and the pods bound to them.

Aggregated ClusterRoles are not expanded: a ClusterRole's `aggregationRule` is ignored and only
its own `rules` count (a controller that fills in aggregated rules would make them effective).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from arktos.api.meta import TENANT_ALL, TENANT_SYSTEM
from arktos.api.rbac_policy import NODES_GROUP, SUPERUSER_GROUP
from arktos.api.resources import Scope

Obj = Mapping[str, Any]

AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
NODE_USER_PREFIX = "system:node:"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")

READ_VERBS = frozenset({"get", "list", "watch"})
UNNAMED_VERBS = frozenset({"list", "watch", "create", "deletecollection"})
"""Verbs that resourceNames never grant (as in Kubernetes)."""
PUBLIC_URLS = ("/healthz", "/livez", "/readyz", "/version", "/version/")
"""GET-able by everyone (kube's `system:public-info-viewer`)."""
DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*")
"""GET-able by every authenticated user (kube's `system:discovery`)."""
SELF_REVIEWS = frozenset({
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
})
"""`create`-able by every authenticated user (kube's `system:basic-user`)."""
_URL_VERBS = frozenset({"get", "head"})


# --- request and decision -----------------------------------------------------------------

@dataclass(frozen=True)
class User:
    """An authenticated caller; `tenant` is where its bindings are looked up."""

    name: str
    tenant: str
    groups: tuple[str, ...] = ()
    uid: str = ""


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it.

    `verb` is a Kubernetes verb for resource requests or the lower-case HTTP method for
    non-resource ones (`resource == ""`, `scope is None`, `path` set). `tenant` is the request's
    tenant, `all` for lists across tenants, "" for cluster-scoped resources. `name` is the
    object's name, also for `create` when the caller knows it (node rules need it).
    `bound_node` is the `spec.nodeName` of the pod a pod request is about (None when unknown);
    for a ConfigMap or Secret a node asks for, that node if a pod bound to it uses the object."""

    user: User
    verb: str
    resource: str = ""
    group: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    tenant: str = ""
    scope: Scope | None = None
    path: str = ""
    bound_node: str | None = None

    @property
    def resource_request(self) -> bool:
        return bool(self.resource)


@dataclass(frozen=True)
class Decision:
    """The answer; `reason` says which rule allowed or why nothing did."""

    allowed: bool
    reason: str
    attrs: Attributes | None = None


# --- rules --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled PolicyRule."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: tuple[str, ...]

    @classmethod
    def compile(cls, rule: Obj, *, namespaced: bool) -> Rule:
        """From a stored rule; a Role's rules never carry non-resource URLs."""
        urls = () if namespaced else tuple(_strings(rule.get("nonResourceURLs")))
        return cls(frozenset(_strings(rule.get("verbs"))),
                   frozenset(_strings(rule.get("apiGroups"))),
                   frozenset(_strings(rule.get("resources"))),
                   frozenset(_strings(rule.get("resourceNames"))), urls)

    def allows_resource(self, attrs: Attributes) -> bool:
        return (_has(self.verbs, attrs.verb) and _has(self.groups, attrs.group)
                and self._resource_matches(attrs.resource, attrs.subresource)
                and self._name_matches(attrs.verb, attrs.name))

    def allows_url(self, verb: str, path: str) -> bool:
        return _has(self.verbs, verb) and url_matches(self.urls, path)

    def _resource_matches(self, resource: str, subresource: str) -> bool:
        if "*" in self.resources:
            return True
        if not subresource:
            return resource in self.resources
        return (f"{resource}/{subresource}" in self.resources
                or f"*/{subresource}" in self.resources)

    def _name_matches(self, verb: str, name: str) -> bool:
        if not self.names:
            return True
        return verb not in UNNAMED_VERBS and bool(name) and name in self.names


def url_matches(patterns: Iterable[str], path: str) -> bool:
    """Kubernetes' NonResourceURLMatches: `*`, exact, or a prefix ending in `*`."""
    for pattern in patterns:
        if pattern in ("*", path):
            return True
        if pattern.endswith("*") and path.startswith(pattern.rstrip("*")):
            return True
    return False


def _has(values: frozenset[str], value: str) -> bool:
    return "*" in values or value in values


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# --- the index ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Grant:
    """One subject of one binding: the role it is granted, and where."""

    binding_kind: str
    binding_name: str
    tenant: str
    namespace: str
    """The RoleBinding's namespace; "" for a ClusterRoleBinding."""
    role_kind: str
    role_name: str
    subject: str
    """`User "alice"`, for messages."""

    def describe(self) -> str:
        where = f'{self.namespace}/' if self.namespace else ""
        return (f'{self.binding_kind} "{where}{self.binding_name}" of {self.role_kind} '
                f'"{self.role_name}" to {self.subject}')


_ObjKey = tuple[str, str, str, str]
"""(kind, tenant, namespace, name) of a stored role or binding."""
_SubjectKey = tuple[str, str, str, str]
"""(tenant, namespace or "" for tenant-wide, subject kind, subject name)."""


class RbacIndex:
    """Roles and bindings indexed for per-request lookups without scanning.

    Bindings are indexed by (tenant, namespace, subject kind, subject name) — namespace "" for
    ClusterRoleBindings — so a request costs a few dict lookups per subject of the user.
    ServiceAccount subjects are indexed under their user name
    (`system:serviceaccount:<ns>:<name>`). Feed it every change with `put` and `remove`."""

    def __init__(self) -> None:
        self._rules: dict[_ObjKey, tuple[Rule, ...]] = {}
        self._grants: dict[_SubjectKey, dict[str, Grant]] = {}
        self._indexed: dict[_ObjKey, list[_SubjectKey]] = {}

    @classmethod
    def build(cls, roles: Iterable[Obj], cluster_roles: Iterable[Obj],
              role_bindings: Iterable[Obj], cluster_role_bindings: Iterable[Obj]) -> RbacIndex:
        index = cls()
        for kind, objs in (("Role", roles), ("ClusterRole", cluster_roles),
                           ("RoleBinding", role_bindings),
                           ("ClusterRoleBinding", cluster_role_bindings)):
            for obj in objs:
                index.put(kind, obj)
        return index

    def put(self, kind: str, obj: Obj) -> None:
        """Add or replace a Role, ClusterRole, RoleBinding or ClusterRoleBinding."""
        key = _object_key(kind, obj)
        if kind in ROLE_KINDS:
            namespaced = kind == "Role"
            rules = obj.get("rules")
            self._rules[key] = tuple(Rule.compile(r, namespaced=namespaced)
                                     for r in (rules if isinstance(rules, list) else ())
                                     if isinstance(r, Mapping))
            return
        self._unindex(key)
        self._index_binding(key, obj)

    def remove(self, kind: str, obj: Obj) -> None:
        """Forget an object (only its kind and metadata are read)."""
        key = _object_key(kind, obj)
        self._rules.pop(key, None)
        self._unindex(key)

    def grants(self, tenant: str, namespace: str,
               subjects: Iterable[tuple[str, str]]) -> Iterator[Grant]:
        """Grants to any of `subjects` by bindings of `tenant` in `namespace` ("": tenant-wide)."""
        for kind, name in subjects:
            found = self._grants.get((tenant, namespace, kind, name))
            if found:
                yield from list(found.values())

    def rules(self, grant: Grant) -> tuple[Rule, ...]:
        """The rules of the role a grant refers to (none if it does not exist yet)."""
        namespace = grant.namespace if grant.role_kind == "Role" else ""
        return self.role_rules(grant.role_kind, grant.tenant, namespace, grant.role_name) or ()

    def role_rules(self, kind: str, tenant: str, namespace: str,
                   name: str) -> tuple[Rule, ...] | None:
        """The rules of a Role (namespace set) or ClusterRole (namespace ""); None if unknown."""
        return self._rules.get((kind, tenant, namespace, name))

    def _index_binding(self, key: _ObjKey, obj: Obj) -> None:
        kind, tenant, namespace, name = key
        ref = obj.get("roleRef")
        ref = ref if isinstance(ref, Mapping) else {}
        role_kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
        if role_kind not in (ROLE_KINDS if kind == "RoleBinding" else ("ClusterRole",)):
            return
        subjects = obj.get("subjects")
        keys: list[_SubjectKey] = []
        for subject in subjects if isinstance(subjects, list) else ():
            found = _subject(subject, namespace)
            if found is None:
                continue
            skey = (tenant, namespace, *found)
            grant = Grant(kind, name, tenant, namespace, role_kind, role_name,
                          f'{found[0]} "{found[1]}"')
            self._grants.setdefault(skey, {})[name] = grant
            keys.append(skey)
        self._indexed[key] = keys

    def _unindex(self, key: _ObjKey) -> None:
        for skey in self._indexed.pop(key, ()):
            found = self._grants.get(skey)
            if found is not None:
                found.pop(key[3], None)
                if not found:
                    del self._grants[skey]


def _object_key(kind: str, obj: Obj) -> _ObjKey:
    if kind not in ROLE_KINDS + BINDING_KINDS:
        raise ValueError(f"not an RBAC kind: {kind!r}")
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    tenant, name = str(meta.get("tenant") or ""), str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "") if kind in ("Role", "RoleBinding") else ""
    if not tenant or not name or (kind in ("Role", "RoleBinding") and not namespace):
        raise ValueError(f"{kind} without metadata.tenant, name or namespace: {meta!r}")
    return kind, tenant, namespace, name


def _subject(subject: object, namespace: str) -> tuple[str, str] | None:
    """(kind, name) a subject is indexed under; a ServiceAccount as its user name."""
    if not isinstance(subject, Mapping):
        return None
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind in ("User", "Group"):
        return str(kind), name
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        if not isinstance(sa_namespace, str) or not sa_namespace:
            return None
        return "ServiceAccount", f"{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}"
    return None


# --- authorize ----------------------------------------------------------------------------

def authorize(index: RbacIndex, attrs: Attributes) -> Decision:
    """Allow or deny one request (see the module docstring for the order of the checks)."""
    user = attrs.user
    if not user.tenant or user.tenant == TENANT_ALL:
        return Decision(False, "the user has no tenant", attrs)
    if user.tenant == TENANT_SYSTEM and SUPERUSER_GROUP in user.groups:
        return Decision(True, f"superuser (group {SUPERUSER_GROUP})", attrs)
    builtin = _builtin(attrs)
    if builtin:
        return Decision(True, builtin, attrs)
    if not attrs.resource_request:
        return _authorize_url(index, attrs)
    refusal = tenant_refusal(attrs)
    if refusal:
        return Decision(False, refusal, attrs)
    decision = _authorize_rbac(index, attrs)
    node = node_name(user)
    if decision.allowed and node is not None:
        refusal = node_refusal(attrs, node)
        if refusal:
            return Decision(False, refusal, attrs)
    return decision


def _builtin(attrs: Attributes) -> str:
    """Why every user may do this anyway ("" if it is not a built-in grant)."""
    if not attrs.resource_request:
        if attrs.verb in _URL_VERBS and url_matches(PUBLIC_URLS, attrs.path):
            return "built-in: public information"
        if (attrs.verb in _URL_VERBS and is_authenticated(attrs.user)
                and url_matches(DISCOVERY_URLS, attrs.path)):
            return "built-in: discovery"
        return ""
    if (attrs.verb == "create" and not attrs.subresource and is_authenticated(attrs.user)
            and (attrs.group, attrs.resource) in SELF_REVIEWS
            and attrs.tenant in ("", attrs.user.tenant)):
        return "built-in: self review"
    return ""


def _authorize_url(index: RbacIndex, attrs: Attributes) -> Decision:
    user = attrs.user
    if user.tenant != TENANT_SYSTEM:
        return Decision(False, "non-resource URLs are for the system tenant only", attrs)
    grant = _first_grant(index, user, ("",), lambda r: r.allows_url(attrs.verb, attrs.path))
    if grant is None:
        return Decision(False, "no RBAC rule allows it", attrs)
    return Decision(True, f"RBAC: allowed by {grant.describe()}", attrs)


def tenant_refusal(attrs: Attributes) -> str:
    """Why the user may not touch the request's tenant or cluster scope ("" if it may)."""
    user = attrs.user
    if attrs.scope is None:
        return "a resource request without a scope"
    if attrs.scope is Scope.CLUSTER:
        if user.tenant == TENANT_SYSTEM or _own_tenant_get(attrs):
            return ""
        return "cluster-scoped resources are for the system tenant only"
    if not attrs.tenant:
        return "the request has no tenant"
    if user.tenant == TENANT_SYSTEM or attrs.tenant == user.tenant:
        return ""
    if attrs.tenant == TENANT_ALL:
        return f'a user of tenant "{user.tenant}" cannot access all tenants'
    return f'a user of tenant "{user.tenant}" cannot access tenant "{attrs.tenant}"'


def _own_tenant_get(attrs: Attributes) -> bool:
    return (attrs.verb == "get" and attrs.group == "" and attrs.resource == "tenants"
            and not attrs.subresource and attrs.name == attrs.user.tenant)


def _authorize_rbac(index: RbacIndex, attrs: Attributes) -> Decision:
    """RBAC in the user's tenant; RoleBindings only for requests in their own tenant."""
    user = attrs.user
    namespaces: tuple[str, ...] = ("",)
    if attrs.namespace and attrs.tenant == user.tenant:
        namespaces = ("", attrs.namespace)
    grant = _first_grant(index, user, namespaces, lambda r: r.allows_resource(attrs))
    if grant is None:
        return Decision(False, "no RBAC rule allows it", attrs)
    return Decision(True, f"RBAC: allowed by {grant.describe()}", attrs)


def _first_grant(index: RbacIndex, user: User, namespaces: tuple[str, ...],
                 allows: Callable[[Rule], bool]) -> Grant | None:
    subjects = user_subjects(user)
    for namespace in namespaces:
        for grant in index.grants(user.tenant, namespace, subjects):
            if any(allows(rule) for rule in index.rules(grant)):
                return grant
    return None


def is_authenticated(user: User) -> bool:
    """Everyone but the anonymous user is implicitly in `system:authenticated`."""
    return user.name != ANONYMOUS_USER and UNAUTHENTICATED_GROUP not in user.groups


@lru_cache(maxsize=4096)
def user_subjects(user: User) -> tuple[tuple[str, str], ...]:
    """The (kind, name) subjects a user matches in its tenant's bindings."""
    subjects = [("User", user.name)]
    if user.name.startswith(SERVICE_ACCOUNT_PREFIX):
        subjects.append(("ServiceAccount", user.name))
    groups = dict.fromkeys(user.groups)
    if is_authenticated(user):
        groups[AUTHENTICATED_GROUP] = None
    subjects.extend(("Group", group) for group in groups)
    return tuple(subjects)


# --- nodes --------------------------------------------------------------------------------

def node_name(user: User) -> str | None:
    """The node a user is (`system:node:<name>` in `system:nodes` of tenant system), or None."""
    if (user.tenant != TENANT_SYSTEM or NODES_GROUP not in user.groups
            or not user.name.startswith(NODE_USER_PREFIX)):
        return None
    return user.name[len(NODE_USER_PREFIX):] or None


def node_refusal(attrs: Attributes, node: str) -> str:
    """Why node `node` may not do this although RBAC allows it ("" if it may)."""
    target = (attrs.group, attrs.resource)
    if target == ("", "nodes"):
        return _node_on_nodes(attrs, node)
    if target == ("", "pods"):
        return _node_on_pods(attrs, node)
    if target == ("coordination.k8s.io", "leases"):
        return _node_on_leases(attrs, node)
    if target in (("", "configmaps"), ("", "secrets")):
        if attrs.verb == "get" and not attrs.subresource and attrs.bound_node == node:
            return ""
        return f'node "{node}" may only get the {attrs.resource} of pods bound to it'
    return ""


def node_create_refusal(group: str, resource: str, name: str, node: str) -> str:
    """Why node `node` may not create this object of its own kind of objects (its Node, its
    Lease) under `name`, known only from the body ("" if it may)."""
    if (group, resource) == ("", "nodes") and name != node:
        return f'node "{node}" may only create its own Node, not "{name}"'
    if (group, resource) == ("coordination.k8s.io", "leases") and name != node:
        return f'node "{node}" may only create its own Lease, not "{name}"'
    return ""


def _creating_own(attrs: Attributes, node: str) -> bool:
    """A create names its object in the body: the request passes here and
    `node_create_refusal` checks the name once the body is read."""
    return attrs.verb == "create" and attrs.name in ("", node)


def _node_on_nodes(attrs: Attributes, node: str) -> str:
    if attrs.verb in READ_VERBS:
        return ""
    if attrs.subresource in ("", "status") and (
            (attrs.verb in ("update", "patch") and attrs.name == node)
            or (not attrs.subresource and _creating_own(attrs, node))):
        return ""
    return f'node "{node}" may only create, update or patch its own Node'


def _node_on_pods(attrs: Attributes, node: str) -> str:
    if attrs.verb in READ_VERBS:
        return ""
    status_write = attrs.verb in ("update", "patch") and attrs.subresource == "status"
    delete = attrs.verb == "delete" and not attrs.subresource
    if not (status_write or delete):
        return f'node "{node}" may not {attrs.verb} pods'
    if attrs.bound_node != node:
        return f'node "{node}" may only change pods bound to it'
    return ""


def _node_on_leases(attrs: Attributes, node: str) -> str:
    if (attrs.tenant == TENANT_SYSTEM and attrs.namespace == NODE_LEASE_NAMESPACE
            and not attrs.subresource
            and ((attrs.name == node and attrs.verb in ("get", "update", "patch"))
                 or _creating_own(attrs, node))):
        return ""
    return f'node "{node}" may only use its own Lease {NODE_LEASE_NAMESPACE}/{node}'


# --- messages -----------------------------------------------------------------------------

def forbidden_message(attrs: Attributes) -> str:
    """Kubernetes' Forbidden message, with the tenant:
    `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the
    namespace "default" of tenant "acme"`."""
    who = f"User {_q(attrs.user.name)} cannot {attrs.verb}"
    if not attrs.resource_request:
        return f"forbidden: {who} path {_q(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    what = f"{who} resource {_q(resource)} in API group {_q(attrs.group)} {_where(attrs)}"
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    head = f"{qualified} {_q(attrs.name)}" if attrs.name else qualified
    return f"{head} is forbidden: {what}"


def describe(decision: Decision) -> str:
    """The message for a decision: the Forbidden text plus the reason when denied."""
    if decision.allowed:
        return f"allowed: {decision.reason}"
    message = forbidden_message(decision.attrs) if decision.attrs else "forbidden"
    return f"{message}: {decision.reason}" if decision.reason else message


def _where(attrs: Attributes) -> str:
    if attrs.scope is Scope.CLUSTER or not attrs.tenant:
        return "at the cluster scope"
    tenant = "all tenants" if attrs.tenant == TENANT_ALL else f"tenant {_q(attrs.tenant)}"
    if attrs.namespace:
        return f"in the namespace {_q(attrs.namespace)} of {tenant}"
    return "in all tenants" if attrs.tenant == TENANT_ALL else f"in the {tenant}"


def _q(text: str) -> str:
    """Go's %q, near enough: double quotes with escapes."""
    return json.dumps(text, ensure_ascii=False)
