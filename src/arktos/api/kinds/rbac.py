"""`rbac.authorization.k8s.io/v1` kinds. ClusterRoles and their bindings are tenant-scoped,
Roles and RoleBindings namespaced. No I/O here."""

from __future__ import annotations

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    Fields,
    dicts,
    dig,
    fill,
    invalid,
    not_supported,
    path_segment_name_errors,
    required,
    text,
)
from arktos.api.kinds._selector import check_selector
from arktos.api.meta import dns_subdomain_errors
from arktos.api.resources import Column, Getter, Obj, ResourceType, Scope, Validator

_G = "rbac.authorization.k8s.io"
_NO_SUB: frozenset[str] = frozenset()
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


# --- Role and ClusterRole -----------------------------------------------------------------

def _check_rule(rule: Fields, *, namespaced: bool) -> None:
    """Kubernetes' `ValidatePolicyRule`: verbs, and resources or (cluster) non-resource URLs."""
    if not rule.has("verbs"):
        rule.add(required(rule.at("verbs"), "verbs must contain at least one value"))
    rule.strings("verbs")
    groups, resources = rule.strings("apiGroups"), rule.strings("resources")
    names, urls = rule.strings("resourceNames"), rule.strings("nonResourceURLs")
    if urls:
        if namespaced:
            rule.add(invalid(rule.at("nonResourceURLs"), urls,
                             "namespaced rules cannot apply to non-resource URLs"))
        if groups or resources or names:
            rule.add(invalid(rule.at("nonResourceURLs"), urls,
                             "rules cannot apply to both regular resources and non-resource URLs"))
        return
    if not rule.has("apiGroups"):
        rule.add(required(rule.at("apiGroups"),
                          "resource rules must supply at least one api group"))
    if not rule.has("resources"):
        rule.add(required(rule.at("resources"),
                          "resource rules must supply at least one resource"))


def _role_validator(*, namespaced: bool) -> Validator:
    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        causes: list[Cause] = []
        role = Fields(obj, "", causes)
        for rule in role.objects("rules"):
            _check_rule(rule, namespaced=namespaced)
        aggregation = None if namespaced else role.sub("aggregationRule")
        if aggregation is not None:
            if not aggregation.has("clusterRoleSelectors"):
                aggregation.add(required(aggregation.at("clusterRoleSelectors"),
                                         "at least one clusterRoleSelector required if "
                                         "aggregationRule is non-nil"))
            for selector in aggregation.objects("clusterRoleSelectors"):
                check_selector(selector)
        return causes
    return validate


# --- RoleBinding and ClusterRoleBinding ---------------------------------------------------

def _check_subject(subject: Fields, *, cluster: bool) -> None:
    kind = subject.choice("kind", SUBJECT_KINDS, needed=True)
    name = subject.string("name", needed=True)
    group = subject.string("apiGroup") or ""
    if kind == "ServiceAccount":
        if group:
            subject.add(not_supported(subject.at("apiGroup"), group, [""]))
        for err in dns_subdomain_errors(name) if name else ():
            subject.add(invalid(subject.at("name"), name, err))
        namespace = subject.string("namespace")
        if cluster and not namespace:
            subject.add(required(subject.at("namespace")))
    elif kind is not None and group != _G:
        subject.add(not_supported(subject.at("apiGroup"), group, [_G]))


def _binding_validator(*, cluster: bool) -> Validator:
    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")

    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        causes: list[Cause] = []
        binding = Fields(obj, "", causes)
        ref = binding.sub("roleRef", needed=True)
        if ref is not None:
            group = ref.string("apiGroup") or ""
            if group != _G:
                ref.add(not_supported(ref.at("apiGroup"), group, [_G]))
            ref.choice("kind", kinds, needed=True)
            ref.string("name", needed=True, check=path_segment_name_errors)
        for subject in binding.objects("subjects"):
            _check_subject(subject, cluster=cluster)
        if old is not None and obj.get("roleRef") != old.get("roleRef"):
            causes.append(invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
        return causes
    return validate


def _default_binding(obj: Obj) -> None:
    """A subject's apiGroup: "" for service accounts, rbac's group for users and groups."""
    for subject in dicts(obj.get("subjects")):
        if subject.get("kind") in ("User", "Group"):
            fill(subject, "apiGroup", _G)
        elif subject.get("kind") == "ServiceAccount" and subject.get("apiGroup") is None:
            subject["apiGroup"] = ""


def _role_ref(o: Obj) -> str:
    return f"{text(dig(o, 'roleRef', 'kind'), '')}/{text(dig(o, 'roleRef', 'name'), '')}"


def _subjects(kind: str) -> Getter:
    def get(o: Obj) -> str:
        found = [s for s in dicts(o.get("subjects")) if s.get("kind") == kind]
        if kind == "ServiceAccount":
            shown = [f"{s.get('namespace') or ''}/{s.get('name')}" for s in found]
        else:
            shown = [str(s.get("name")) for s in found]
        return ", ".join(shown)
    return get


_BINDING_COLUMNS = (
    Column("ROLE", _role_ref),
    Column("USERS", _subjects("User"), priority=1),
    Column("GROUPS", _subjects("Group"), priority=1),
    Column("SERVICEACCOUNTS", _subjects("ServiceAccount"), priority=1),
)

_NAME = path_segment_name_errors

TYPES = [
    ResourceType(_G, "v1", "Role", "roles", Scope.NAMESPACE, subresources=_NO_SUB,
                 spec_fields=(), validate=_role_validator(namespaced=True), name_check=_NAME),
    ResourceType(_G, "v1", "RoleBinding", "rolebindings", Scope.NAMESPACE, subresources=_NO_SUB,
                 spec_fields=(), validate=_binding_validator(cluster=False), name_check=_NAME,
                 default=_default_binding, columns=_BINDING_COLUMNS),
    ResourceType(_G, "v1", "ClusterRole", "clusterroles", Scope.TENANT, subresources=_NO_SUB,
                 spec_fields=(), validate=_role_validator(namespaced=False),
                 name_check=_NAME),
    ResourceType(_G, "v1", "ClusterRoleBinding", "clusterrolebindings", Scope.TENANT,
                 subresources=_NO_SUB, spec_fields=(), validate=_binding_validator(cluster=True),
                 name_check=_NAME,
                 default=_default_binding, columns=_BINDING_COLUMNS),
]
