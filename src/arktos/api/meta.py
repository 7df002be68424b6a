"""Object metadata: names, tenants, system fields (uid, hashKey, timestamps) and their checks.

No I/O here.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from arktos.api.errors import Cause

TENANT_SYSTEM = "system"
TENANT_ALL = "all"
"""Reserved: lists across tenants; never a tenant name."""
RESERVED_TENANTS = frozenset({TENANT_ALL})
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_MAX_INT64 = 2**63 - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 2**64 - 1
MAX_ANNOTATIONS_BYTES = 256 * 1024


def now_rfc3339() -> str:
    """Current UTC time in Kubernetes' second-precision RFC 3339 form."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (any fraction; naive means UTC) as an aware datetime; None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def hash_key(uid: str) -> int:
    """Arktos' hashKey: FNV-1a 64 of the uid folded into [0, 2^63-1]."""
    h = _FNV_OFFSET
    for byte in uid.encode():
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    if h > _MAX_INT64:
        h -= _MAX_INT64
    return h


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """`generateName` + 5 random lowercase alphanumerics, as kube-apiserver does."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return prefix[:58] + "".join(secrets.choice(alphabet) for _ in range(5))


def dns_label_errors(value: str) -> list[str]:
    if len(value) > 63:
        return ["must be no more than 63 characters"]
    if not _DNS_LABEL.match(value):
        return [("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                 "or '-', and must start and end with an alphanumeric character")]
    return []


def dns_subdomain_errors(value: str) -> list[str]:
    if len(value) > 253:
        return ["must be no more than 253 characters"]
    if not _DNS_SUBDOMAIN.match(value):
        return [("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character")]
    return []


def tenant_name_errors(value: str) -> list[str]:
    if value in RESERVED_TENANTS:
        return [f'"{value}" is reserved and may not be used as a tenant name']
    return dns_label_errors(value)


def qualified_name_errors(key: str) -> list[str]:
    """Problems of a label/annotation key or qualified name `[dns-subdomain-prefix/]name`."""
    prefix, slash, name = key.rpartition("/")
    errs = []
    if slash and (not prefix or dns_subdomain_errors(prefix)):
        errs.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                    "must start and end with an alphanumeric character (at most 63 characters)")
    return errs


def label_value_errors(value: str) -> list[str]:
    """Problems of a label value (the empty string is valid)."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return [("a valid label value must be 63 characters or less, empty or made of "
                 "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric")]
    return []


def _map_causes(path: str, value: Any, *, labels: bool) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Cause(path, "must be a map of strings", "FieldValueTypeInvalid")]
    causes: list[Cause] = []
    for k, v in value.items():
        if not isinstance(v, str):
            causes.append(Cause(f"{path}[{k}]", "must be a string", "FieldValueTypeInvalid"))
            continue
        causes += [Cause(path, f'Invalid value: "{k}": {e}') for e in qualified_name_errors(str(k))]
        if labels:
            causes += [Cause(f"{path}[{k}]", f'Invalid value: "{v}": {e}')
                       for e in label_value_errors(v)]
    if not labels and sum(len(k) + len(str(v)) for k, v in value.items()) > MAX_ANNOTATIONS_BYTES:
        causes.append(Cause(path, "may not be more than 256 KiB", "FieldValueTooLong"))
    return causes


def _owner_ref_causes(refs: Any) -> list[Cause]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [Cause("metadata.ownerReferences", "must be a list", "FieldValueTypeInvalid")]
    causes = []
    for i, ref in enumerate(refs):
        path = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            causes.append(Cause(path, "must be an object", "FieldValueTypeInvalid"))
            continue
        for f in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(f):
                causes.append(Cause(f"{path}.{f}", "Required value", "FieldValueRequired"))
    return causes


def metadata_causes(meta: dict[str, Any], *, name_check: Any = dns_subdomain_errors) -> list[Cause]:
    """Generic metadata checks shared by every kind (name, labels, annotations, owners...)."""
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "name or generateName is required",
                            "FieldValueRequired"))
    elif not isinstance(name, str):
        causes.append(Cause("metadata.name", "must be a string", "FieldValueTypeInvalid"))
    else:
        causes += [Cause("metadata.name", f'Invalid value: "{name}": {e}')
                   for e in name_check(name)]
    causes += _map_causes("metadata.labels", meta.get("labels"), labels=True)
    causes += _map_causes("metadata.annotations", meta.get("annotations"), labels=False)
    causes += _owner_ref_causes(meta.get("ownerReferences"))
    fins = meta.get("finalizers")
    if fins is not None and (not isinstance(fins, list)
                             or not all(isinstance(f, str) and f for f in fins)):
        causes.append(Cause("metadata.finalizers", "must be a list of non-empty strings"))
    return causes


IMMUTABLE_META = ("uid", "creationTimestamp", "tenant", "namespace", "hashKey", "name")


def immutable_meta_causes(meta: dict[str, Any], old_meta: dict[str, Any]) -> list[Cause]:
    """Fields no update may change."""
    return [Cause(f"metadata.{f}", "field is immutable", "FieldValueInvalid")
            for f in IMMUTABLE_META if f in meta and meta.get(f) != old_meta.get(f)]
