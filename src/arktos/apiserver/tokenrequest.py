"""TokenRequest: `POST .../serviceaccounts/{name}/token` mints a service-account token, as
kube's `authentication.k8s.io/v1` TokenRequest does (`kubectl create token`), and the cache
lookups that let the authenticator refuse tokens whose service account or bound object is gone.

Contract: the service account must exist (404); `spec.expirationSeconds` defaults to 3600, is at
least 600 (422 below) and is capped at `MAX_EXPIRATION`; `spec.audiences` defaults to
`API_AUDIENCE`; a `spec.boundObjectRef` (Pod or Secret) must exist in the same tenant and
namespace (404), have the given uid (409) and, for a pod, run as this service account (400).
A node may only mint tokens bound to pods scheduled on it (kube's NodeRestriction).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from arktos.api import errors
from arktos.api.errors import Cause
from arktos.api.kinds._checks import Fields, invalid
from arktos.api.resources import Registry, ResourceType
from arktos.apiserver import authz, codec
from arktos.apiserver.authn import (
    API_AUDIENCE,
    Authenticators,
    BoundObject,
    ServiceAccountTokens,
    UidLookup,
)
from arktos.apiserver.request import RequestInfo
from arktos.apiserver.store import Where
from arktos.apiserver.watchcache import Entry, WatchCache

if TYPE_CHECKING:
    from arktos.apiserver.resources import ResourceHandler

GROUP_VERSION = "authentication.k8s.io/v1"
KIND = "TokenRequest"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 48 * 3600
"""Longer requests are silently shortened to this (kube's --service-account-max-token-expiration)."""
BOUND_KINDS = ("Pod", "Secret")
SIGNER = web.AppKey("service_account_tokens", ServiceAccountTokens)
"""Where the app keeps the signer (absent: the server mints no tokens)."""


@dataclass(frozen=True)
class TokenSpec:
    """A checked `spec`: audiences, lifetime in seconds, and the optional bound object."""

    audiences: list[str]
    seconds: int
    bound_kind: str = ""
    bound: BoundObject | None = None

    def to_dict(self) -> dict[str, Any]:
        ref = None if self.bound is None else {
            "kind": self.bound_kind, "apiVersion": "v1", "name": self.bound.name,
            "uid": self.bound.uid}
        return {"audiences": self.audiences, "expirationSeconds": self.seconds,
                "boundObjectRef": ref}


async def create(h: ResourceHandler, request: web.Request, info: RequestInfo,
                 where: Where) -> web.Response:
    """Mint a token for service account `info.name`; 201 with the TokenRequest and its status."""
    signer = request.config_dict.get(SIGNER)
    if signer is None or signer.private_key is None:
        raise errors.service_unavailable("this API server has no service-account signing key")
    spec = parse_spec(await codec.read_object(request), info.name)
    account = await h.store.get(where, info.name)
    spec, bound = await _resolve_bound(h, where, spec, info.name)
    _node_restriction(request.get("identity"), spec, bound)
    await _wait_cached(h.cache, account, bound)
    now = int(time.time())
    md = account.obj["metadata"]
    token = signer.issue(
        tenant=where.tenant, namespace=where.namespace, name=info.name, uid=md.get("uid", ""),
        ttl=spec.seconds, audiences=spec.audiences, now=now,
        pod=spec.bound if spec.bound_kind == "Pod" else None,
        secret=spec.bound if spec.bound_kind == "Secret" else None)
    return codec.json_response({
        "kind": KIND, "apiVersion": GROUP_VERSION,
        "metadata": {"name": info.name, "namespace": where.namespace, "tenant": where.tenant,
                     "creationTimestamp": _rfc3339(now)},
        "spec": spec.to_dict(),
        "status": {"token": token, "expirationTimestamp": _rfc3339(now + spec.seconds)}}, 201)


def _rfc3339(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_spec(body: Any, name: str) -> TokenSpec:
    """The checked spec of a TokenRequest body; 400 for another kind, 422 for bad fields."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a TokenRequest object")
    if body.get("kind", KIND) != KIND or body.get("apiVersion", GROUP_VERSION) != GROUP_VERSION:
        raise errors.bad_request(f"the body must be a {KIND} of {GROUP_VERSION}, not "
                                 f"{body.get('kind')} of {body.get('apiVersion')}")
    causes: list[Cause] = []
    spec = Fields.of(body.get("spec"), "spec", causes) or Fields({}, "spec", causes)
    audiences = spec.strings("audiences", check=lambda a: [] if a else ["must not be empty"])
    seconds = _seconds(spec)
    kind, bound = _bound_ref(spec)
    if causes:
        raise errors.invalid(KIND, name, causes)
    return TokenSpec(audiences or [API_AUDIENCE], min(seconds, MAX_EXPIRATION), kind, bound)


def _seconds(spec: Fields) -> int:
    """`expirationSeconds`: default 3600, at least 600, at most 2^32 (kube's bounds)."""
    seconds = spec.integer("expirationSeconds")
    if seconds is None:
        return DEFAULT_EXPIRATION
    if seconds < MIN_EXPIRATION:
        spec.add(invalid(spec.at("expirationSeconds"), seconds,
                         "may not specify a duration less than 10 minutes"))
    elif seconds > 2**32:
        spec.add(invalid(spec.at("expirationSeconds"), seconds,
                         "may not specify a duration larger than 2^32 seconds"))
    return seconds


def _bound_ref(spec: Fields) -> tuple[str, BoundObject | None]:
    """(kind, name and uid) of `boundObjectRef`, or ("", None) when there is none."""
    ref = spec.sub("boundObjectRef")
    if ref is None:
        return "", None
    kind = ref.choice("kind", BOUND_KINDS, needed=True)
    version = ref.string("apiVersion")
    if version not in (None, "v1"):
        ref.add(invalid(ref.at("apiVersion"), version, "must be v1 for a Pod or Secret"))
    name = ref.string("name", needed=True)
    uid = ref.string("uid") or ""
    return (kind, BoundObject(name, uid)) if kind and name else ("", None)


async def _resolve_bound(h: ResourceHandler, where: Where, spec: TokenSpec,
                         account: str) -> tuple[TokenSpec, Entry | None]:
    """The spec with the bound object's actual uid, and that object (None if unbound)."""
    if spec.bound is None:
        return spec, None
    rtype = h.store.registry.by_kind("", spec.bound_kind)
    assert rtype is not None
    entry = await h.store.get(Where(rtype, where.tenant, where.namespace), spec.bound.name)
    uid = str(entry.obj["metadata"].get("uid", ""))
    if spec.bound.uid and spec.bound.uid != uid:
        raise errors.conflict(rtype.plural, spec.bound.name, f"the uid in the bound object "
                              f"reference ({spec.bound.uid}) does not match the uid in record "
                              f"({uid}); the object might have been deleted and recreated")
    if spec.bound_kind == "Pod":
        running_as = (entry.obj.get("spec") or {}).get("serviceAccountName") or "default"
        if running_as != account:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{account}" to pod '
                                     f'"{spec.bound.name}" running with serviceaccount '
                                     f'"{running_as}"')
    return TokenSpec(spec.audiences, spec.seconds, spec.bound_kind,
                     BoundObject(spec.bound.name, uid)), entry


def _node_restriction(identity: authz.User | None, spec: TokenSpec,
                      bound: Entry | None) -> None:
    """403 unless a node's token is bound to a pod scheduled on that node."""
    node = authz.node_name(identity) if identity is not None else None
    if node is None:
        return
    if spec.bound_kind != "Pod" or bound is None:
        raise errors.forbidden(f'node "{node}" may only request tokens bound to its pods')
    if (bound.obj.get("spec") or {}).get("nodeName") != node:
        raise errors.forbidden(f'node "{node}" may only request tokens bound to pods '
                               "scheduled on it")


async def _wait_cached(cache: WatchCache, *entries: Entry | None) -> None:
    """Wait until the watch cache (which the authenticator's lookups read) has `entries`, so
    the token works as soon as it is returned."""
    try:
        await cache.wait_for(max(e.rev for e in entries if e is not None))
    except TimeoutError:
        raise errors.StatusError(504, "Timeout", "the watch cache did not catch up in time",
                                 retry_after=1) from None


# --- wiring -------------------------------------------------------------------------------

def signer_of(authenticators: Authenticators | None) -> ServiceAccountTokens | None:
    """The service-account token authenticator of a chain (None if it has none)."""
    chain = authenticators.chain if authenticators is not None else []
    return next((a for a in chain if isinstance(a, ServiceAccountTokens)), None)


def cache_lookup(cache: WatchCache, rtype: ResourceType) -> UidLookup:
    """A uid lookup in the watch cache for objects of `rtype` (None: absent)."""
    def lookup(tenant: str, namespace: str, name: str) -> str | None:
        entry = cache.cache(rtype).entries.get(rtype.key(tenant, namespace, name))
        return None if entry is None else str(entry.obj["metadata"].get("uid", ""))
    return lookup


def wire_lookups(tokens: ServiceAccountTokens, cache: WatchCache, registry: Registry) -> None:
    """Let `tokens` check service accounts, pods and secrets against the watch cache."""
    sa, pod, secret = (registry.by_kind("", k) for k in ("ServiceAccount", "Pod", "Secret"))
    assert sa is not None and pod is not None and secret is not None
    tokens.sa_lookup = cache_lookup(cache, sa)
    tokens.pod_lookup = cache_lookup(cache, pod)
    tokens.secret_lookup = cache_lookup(cache, secret)
