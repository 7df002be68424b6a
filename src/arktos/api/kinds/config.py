"""Core configuration kinds: ConfigMap, Secret and ServiceAccount. No I/O here."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from arktos.api.errors import Cause
from arktos.api.kinds._checks import (
    Fields,
    base64_errors,
    config_key_errors,
    count,
    dig,
    forbidden,
    immutable,
    invalid,
    required,
    section,
    text,
    too_long,
)
from arktos.api.resources import Column, Obj, ResourceType, Scope

MAX_SIZE = 1024 * 1024
"""ConfigMaps and Secrets hold at most 1 MiB of data."""
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
_SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
"""Keys each well-known secret type must carry in `data`."""


def _decoded_size(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return 0


def _data(f: Fields, key: str, *, encoded: bool) -> dict[str, str]:
    """A map of config keys to strings (base64 when `encoded`); records its size."""
    values = f.mapping(key, keys=config_key_errors, values=base64_errors if encoded else None)
    size = sum(len(k) + (_decoded_size(v) if encoded else len(v.encode()))
               for k, v in values.items())
    if size > MAX_SIZE:
        f.add(too_long(f.at(key), MAX_SIZE))
    return values


def _immutable_causes(obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> list[Cause]:
    """Once `immutable: true`, neither it nor the data may change."""
    if old is None or old.get("immutable") is not True:
        return []
    causes = []
    if obj.get("immutable") is not True:
        causes.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if obj.get(key) != old.get(key):
            causes.append(forbidden(key, "field is immutable when `immutable` is set"))
    return causes


# --- ConfigMap ----------------------------------------------------------------------------

def _validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    cm = Fields(obj, "", causes)
    data = _data(cm, "data", encoded=False)
    binary = _data(cm, "binaryData", encoded=True)
    cm.boolean("immutable")
    for key in sorted(set(data) & set(binary)):
        cm.add(invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
    return causes + _immutable_causes(obj, old, ("data", "binaryData"))


# --- Secret -------------------------------------------------------------------------------

def _validate_secret(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    secret = Fields(obj, "", causes)
    data = _data(secret, "data", encoded=True)
    secret.mapping("stringData", keys=config_key_errors)
    secret.boolean("immutable")
    kind = secret.string("type", needed=True)
    for key in _SECRET_KEYS.get(kind or "", ()):
        if key not in data:
            secret.add(required(f"data[{key}]"))
    if kind == "kubernetes.io/basic-auth" and not {"username", "password"} & set(data):
        secret.add(required("data[username]", "a basic-auth secret needs a username or password"))
    annotations = dig(obj, "metadata", "annotations")
    if kind == "kubernetes.io/service-account-token" and not (
            isinstance(annotations, dict) and annotations.get(SA_NAME_ANNOTATION)):
        secret.add(required(f"metadata.annotations[{SA_NAME_ANNOTATION}]"))
    if old is not None and kind is not None and old.get("type") not in (None, kind):
        secret.add(immutable("type", kind))
    return causes + _immutable_causes(obj, old, ("data",))


def _default_secret(obj: Obj) -> None:
    """Type `Opaque`; `stringData` is base64-encoded into `data` (winning over it) and removed."""
    if obj.get("type") in (None, ""):
        obj["type"] = "Opaque"
    plain = obj.get("stringData")
    if not isinstance(plain, dict) or not all(isinstance(v, str) for v in plain.values()):
        return
    data = section(obj, "data")
    if data is None:
        return
    for key, value in plain.items():
        data[key] = base64.b64encode(value.encode()).decode()
    del obj["stringData"]


# --- ServiceAccount -----------------------------------------------------------------------

def _validate_serviceaccount(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    sa = Fields(obj, "", causes)
    for ref in sa.objects("secrets"):
        for key in ("name", "namespace", "kind", "uid", "apiVersion"):
            ref.string(key)
    for ref in sa.objects("imagePullSecrets"):
        ref.string("name", needed=True)
    sa.boolean("automountServiceAccountToken")
    return causes


def _data_count(obj: Obj) -> int:
    return count(obj.get("data")) + count(obj.get("binaryData"))


def _type(obj: Any) -> str:
    return text(obj.get("type") if isinstance(obj, dict) else None, "")


TYPES = [
    ResourceType("", "v1", "ConfigMap", "configmaps", Scope.NAMESPACE, short_names=("cm",),
                 subresources=frozenset(), spec_fields=(), validate=_validate_configmap,
                 columns=(Column("DATA", _data_count, type="integer"),)),
    ResourceType("", "v1", "Secret", "secrets", Scope.NAMESPACE, subresources=frozenset(),
                 spec_fields=(), validate=_validate_secret, default=_default_secret,
                 columns=(Column("TYPE", _type), Column("DATA", _data_count, type="integer")),
                 field_labels={"type": _type}),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", Scope.NAMESPACE,
                 short_names=("sa",), subresources=frozenset({"token"}), spec_fields=(),
                 validate=_validate_serviceaccount,
                 columns=(Column("SECRETS", lambda o: count(o.get("secrets")), type="integer"),)),
]
