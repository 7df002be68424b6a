"""RBAC escalation prevention, as in Kubernetes. Pure: no I/O here.

A user may write a Role or ClusterRole only with permissions it holds itself where the role
applies, unless RBAC grants it `escalate` on that role; it may write a RoleBinding or
ClusterRoleBinding only if it holds every permission of the role referred to where the binding
applies, unless RBAC grants it `bind` on that role. Without this, anyone allowed to edit
roles or bindings in a namespace could grant itself anything there.

A permission is held when `authz.authorize` would allow each of its atomic requests (one verb,
API group, resource, name or URL): a wildcard is only covered by the same wildcard, and a rule
limited to resource names does not cover one that is not. A ClusterRole applies tenant-wide
(across all namespaces of its tenant); a Role and anything bound by a RoleBinding, in one
namespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from arktos.api.resources import Scope
from arktos.apiserver import authz

RBAC_GROUP = "rbac.authorization.k8s.io"
MAX_ATOMS = 20_000
"""More atomic permissions than this in one role are not checked one by one: writing such a
role needs `escalate` (binding it, `bind`)."""
_ROLE_PLURALS = {"Role": "roles", "ClusterRole": "clusterroles"}


def role_write_refusal(index: authz.RbacIndex, user: authz.User, kind: str,
                       role: Mapping[str, Any]) -> str:
    """Why `user` may not store this Role/ClusterRole ("" if it may)."""
    tenant, namespace, name = _where(kind, role)
    if _may(index, user, "escalate", kind, tenant, namespace, name):
        return ""
    rules = _rules(role.get("rules"), namespaced=kind == "Role")
    missing = _first_missing(index, user, rules, tenant, namespace)
    if not missing:
        return ""
    return (f"user {user.name!r} (tenant {user.tenant!r}) is attempting to grant RBAC "
            f"permissions not currently held: {missing}")


def binding_write_refusal(index: authz.RbacIndex, user: authz.User, kind: str,
                          binding: Mapping[str, Any]) -> str:
    """Why `user` may not store this RoleBinding/ClusterRoleBinding ("" if it may)."""
    tenant, namespace, _ = _where(kind, binding)
    ref = binding.get("roleRef")
    ref = ref if isinstance(ref, Mapping) else {}
    role_kind, role_name = str(ref.get("kind", "")), str(ref.get("name", ""))
    if role_kind not in _ROLE_PLURALS:
        return ""  # validation refuses it
    role_ns = namespace if role_kind == "Role" else ""
    if _may(index, user, "bind", role_kind, tenant, namespace, role_name):
        return ""
    rules = index.role_rules(role_kind, tenant, role_ns, role_name)
    if rules is None:
        return (f"user {user.name!r} may not bind {role_kind} {role_name!r}: it does not exist "
                "(and the user has no `bind` permission on it)")
    missing = _first_missing(index, user, rules, tenant, namespace)
    if not missing:
        return ""
    return (f"user {user.name!r} (tenant {user.tenant!r}) may not bind {role_kind} "
            f"{role_name!r}: it grants permissions not currently held: {missing}")


def _where(kind: str, obj: Mapping[str, Any]) -> tuple[str, str, str]:
    md = obj.get("metadata")
    md = md if isinstance(md, Mapping) else {}
    namespace = str(md.get("namespace") or "") if kind in ("Role", "RoleBinding") else ""
    return str(md.get("tenant") or ""), namespace, str(md.get("name") or "")


def _may(index: authz.RbacIndex, user: authz.User, verb: str, role_kind: str, tenant: str,
         namespace: str, name: str) -> bool:
    """May `user` do `verb` on the role (asked in its tenant; in `namespace`, or tenant-wide
    when "")?"""
    attrs = authz.Attributes(user=user, verb=verb, resource=_ROLE_PLURALS[role_kind],
                             group=RBAC_GROUP, name=name, namespace=namespace, tenant=tenant,
                             scope=Scope.NAMESPACE)
    return authz.authorize(index, attrs).allowed


def _rules(raw: object, *, namespaced: bool) -> tuple[authz.Rule, ...]:
    return tuple(authz.Rule.compile(r, namespaced=namespaced)
                 for r in (raw if isinstance(raw, list) else ()) if isinstance(r, Mapping))


def _first_missing(index: authz.RbacIndex, user: authz.User, rules: tuple[authz.Rule, ...],
                   tenant: str, namespace: str) -> str:
    """The first atomic permission of `rules` the user does not hold, described ("" if none)."""
    if sum(_size(rule) for rule in rules) > MAX_ATOMS:
        return f"more than {MAX_ATOMS} permissions to check"
    for attrs in _atoms(user, rules, tenant, namespace):
        if not authz.authorize(index, attrs).allowed:
            return _describe(attrs)
    return ""


def _size(rule: authz.Rule) -> int:
    resources = len(rule.groups) * len(rule.resources) * max(len(rule.names), 1)
    return len(rule.verbs) * (resources + len(rule.urls))


def _atoms(user: authz.User, rules: tuple[authz.Rule, ...], tenant: str,
           namespace: str) -> Iterator[authz.Attributes]:
    """One request per verb x group x resource x name, and per verb x URL."""
    for rule in rules:
        for verb in sorted(rule.verbs):
            for url in rule.urls:
                yield authz.Attributes(user=user, verb=verb, path=url)
            for group in sorted(rule.groups):
                for resource in sorted(rule.resources):
                    plural, _, sub = resource.partition("/")
                    for name in sorted(rule.names) or [""]:
                        yield authz.Attributes(
                            user=user, verb=verb, resource=plural, group=group,
                            subresource=sub, name=name, namespace=namespace, tenant=tenant,
                            scope=Scope.NAMESPACE)


def _describe(attrs: authz.Attributes) -> str:
    if not attrs.resource_request:
        return f"{{NonResourceURLs:[{attrs.path}], Verbs:[{attrs.verb}]}}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    names = f", ResourceNames:[{attrs.name}]" if attrs.name else ""
    return (f"{{APIGroups:[{attrs.group!r}], Resources:[{resource}]{names}, "
            f"Verbs:[{attrs.verb}]}}")
