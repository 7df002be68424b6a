"""The declarative description of a served resource (`ResourceType`) and the registry of them.

Adding a kind is one `ResourceType(...)` entry in a module of `arktos.api.kinds`.
No I/O here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from arktos.api.errors import Cause
from arktos.api.meta import dns_subdomain_errors

Obj = dict[str, Any]
Validator = Callable[[Obj, Obj | None], list[Cause]]
"""(object, old object or None on create) -> problems; called after defaulting."""
Defaulter = Callable[[Obj], None]
"""Fills defaults into the object in place."""
Getter = Callable[[Obj], Any]
NameCheck = Callable[[str], list[str]]
"""name -> problems with it (empty when valid)."""


class Scope(enum.Enum):
    """Where objects of a kind live: above tenants, in a tenant, or in a tenant's namespace."""

    CLUSTER = "Cluster"
    TENANT = "Tenant"
    NAMESPACE = "Namespaced"


def no_causes(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


def no_defaults(obj: Obj) -> None:
    return None


@dataclass(frozen=True)
class Column:
    """A column of the `kubectl get` table (`meta.k8s.io/v1` Table)."""

    name: str
    get: Getter
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""


ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """Everything the API server needs to serve one kind."""

    group: str
    version: str
    kind: str
    plural: str
    scope: Scope
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset({"status"})
    validate: Validator = no_causes
    default: Defaulter = no_defaults
    columns: tuple[Column, ...] = ()
    field_labels: Mapping[str, Getter] = field(default_factory=dict)
    """Extra field-selector keys beyond the metadata ones, e.g. `spec.nodeName`."""
    spec_fields: tuple[str, ...] = ("spec",)
    """Top-level fields whose change bumps `metadata.generation`."""
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    name_check: NameCheck = dns_subdomain_errors
    """Rule for `metadata.name` (DNS subdomain unless the kind says otherwise)."""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: the name used in messages and RBAC."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def tenanted(self) -> bool:
        return self.scope is not Scope.CLUSTER

    @property
    def namespaced(self) -> bool:
        return self.scope is Scope.NAMESPACE

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def key_root(self) -> str:
        """Storage key prefix of every object of this kind (ends with `/`)."""
        base = self.plural if not self.group else f"{self.group}/{self.plural}"
        return f"/registry/{base}/"

    def key_prefix(self, tenant: str = "", namespace: str = "") -> str:
        """Storage prefix for a list; empty tenant/namespace means all of them."""
        prefix = self.key_root
        if self.tenanted and tenant:
            prefix += tenant + "/"
            if self.namespaced and namespace:
                prefix += namespace + "/"
        return prefix

    def key(self, tenant: str, namespace: str, name: str) -> str:
        """Storage key of one object: `/registry/{resource}[/{tenant}[/{namespace}]]/{name}`."""
        parts = [self.key_root.rstrip("/")]
        if self.tenanted:
            parts.append(tenant)
        if self.namespaced:
            parts.append(namespace)
        parts.append(name)
        return "/".join(parts)


class Registry:
    """The set of served resource types, looked up by URL parts or by kind."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._types = list(types)
        self._by_path = {(t.group, t.version, t.plural): t for t in self._types}
        self._by_kind = {(t.group, t.kind): t for t in self._types}
        if len(self._by_path) != len(self._types):
            raise ValueError("duplicate resource in registry")

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def group_versions(self) -> list[tuple[str, str]]:
        """(group, version) pairs in registration order, core first."""
        seen: dict[tuple[str, str], None] = {}
        for t in self._types:
            seen[(t.group, t.version)] = None
        return list(seen)

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types if t.group == group and t.version == version]
