"""Authentication: who is calling, and of which tenant.

Three authenticators, tried in order by `Authenticators.authenticate`:
- client certificates (verified by the TLS layer against the cluster CA): CN = user,
  O=`tenant:<name>` = tenant (more than one is an error), other O values = groups;
- a static token file (`--token-auth-file`): CSV `token,user,uid,"group1,group2",,tenant`;
- service-account tokens: JWTs signed with the cluster's service-account key, carrying tenant,
  namespace and service account; minted ones (TokenRequest) also carry an expiry, audiences
  and possibly a bound pod or secret, and stop working when those are gone.
A request with credentials that do not check out gets 401; one with none is anonymous (the
server allows anonymous callers only the health and version endpoints).
Users without a tenant belong to the system tenant only when their name starts with `system:`
(Arktos' fallback); any other tenant-less identity is refused.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from arktos.api import errors
from arktos.api.meta import TENANT_SYSTEM, tenant_name_errors
from arktos.apiserver.authz import User
from arktos.certs import identity_from_cert

SA_ISSUER = "arktos"
SA_TENANT_CLAIM = "arktos.io/tenant"
SA_PREFIX = "system:serviceaccount:"
API_AUDIENCE = "https://kubernetes.default.svc"
"""The audience this API server accepts in service-account tokens, and the default audience
of tokens it mints (tokens without `aud` are accepted too: legacy tokens)."""


Identity = User
"""An authenticated caller (the RBAC engine's `User`)."""


def with_tenant(name: str, tenant: str, groups: Sequence[str], uid: str = "") -> Identity:
    """An identity with the tenant rules applied; 401 when the tenant is missing or bad."""
    if not tenant:
        if not name.startswith("system:"):
            raise errors.unauthorized(f'user "{name}" has no tenant')
        tenant = TENANT_SYSTEM
    if tenant_name_errors(tenant):
        raise errors.unauthorized(f'user "{name}" has an invalid tenant "{tenant}"')
    return Identity(name, tenant, (*groups, "system:authenticated"), uid)


class Authenticator(Protocol):
    def authenticate(self, bearer: str | None, peer: Any) -> Identity | None:
        """The caller's identity, None when these credentials are not of this kind, or a 401
        `StatusError` when they are of this kind but invalid."""


class ClientCertificates:
    """Identity from the TLS client certificate (already verified against the cluster CA by
    the TLS layer, which refuses certificates it cannot verify during the handshake).

    Identities are remembered per certificate (bounded), so a connection's requests do not
    parse its certificate again."""

    CACHE_SIZE = 4096

    def __init__(self) -> None:
        self._known: dict[bytes, Identity] = {}

    def authenticate(self, bearer: str | None, peer: Any) -> Identity | None:
        der = peer.getpeercert(binary_form=True) if peer is not None else None
        if not der:
            return None
        identity = self._known.get(der)
        if identity is None:
            identity = self._parse(der)
            if len(self._known) >= self.CACHE_SIZE:
                self._known.clear()
            self._known[der] = identity
        return identity

    @staticmethod
    def _parse(der: bytes) -> Identity:
        try:
            user, tenant, groups = identity_from_cert(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise errors.unauthorized(f"invalid client certificate: {exc}") from None
        if not user:
            raise errors.unauthorized("invalid client certificate: no common name")
        return with_tenant(user, tenant, groups)


class TokenFile:
    """Static bearer tokens loaded from a CSV file."""

    def __init__(self, rows: Mapping[str, Identity]) -> None:
        self.rows = dict(rows)

    @classmethod
    def load(cls, path: Path) -> TokenFile:
        rows: dict[str, Identity] = {}
        with path.open(newline="") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 3:
                    raise ValueError(f"{path}:{n}: need at least token,user,uid")
                rows[row[0]] = _row_identity(row, f"{path}:{n}")
        return cls(rows)

    def authenticate(self, bearer: str | None, peer: Any) -> Identity | None:
        if bearer is None:
            return None
        return self.rows.get(bearer)


def _row_identity(row: list[str], where: str) -> Identity:
    """`token,user,uid,"g1,g2",,tenant` -> the identity (ValueError naming `where`)."""
    groups = [g for g in (row[3] if len(row) > 3 else "").split(",") if g]
    tenant = row[5] if len(row) > 5 else ""
    try:
        return with_tenant(row[1], tenant, groups, row[2])
    except errors.StatusError as exc:
        raise ValueError(f"{where}: {exc.message}") from None


class BoundObject(NamedTuple):
    """The object a token is bound to (`kubernetes.io.pod` or `kubernetes.io.secret`)."""

    name: str
    uid: str


UidLookup = Callable[[str, str, str], str | None]
"""(tenant, namespace, name) -> the object's uid, or None when it does not exist."""


class ServiceAccountTokens:
    """Signs and checks service-account JWTs (ES256/RS256 with the cluster's key pair).

    The optional lookups let `authenticate` refuse tokens whose service account (`sa_lookup`)
    or bound pod or secret (`pod_lookup`, `secret_lookup`) is gone or was recreated with
    another uid; without a lookup that check is skipped."""

    def __init__(self, *, private_key: bytes | None, public_key: bytes) -> None:
        self.private_key = private_key
        self.public_key = public_key
        key = load_pem_public_key(public_key)
        self.algorithm = "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "RS256"
        self.sa_lookup: UidLookup | None = None
        self.pod_lookup: UidLookup | None = None
        self.secret_lookup: UidLookup | None = None

    def issue(self, *, tenant: str, namespace: str, name: str, uid: str = "",
              ttl: float | None = None, audiences: Sequence[str] = (),
              pod: BoundObject | None = None, secret: BoundObject | None = None,
              now: int | None = None) -> str:
        """A token for service account `name` of `tenant`/`namespace`, issued at `now`
        (default: the current time); it expires `ttl` seconds later (never when None), is for
        `audiences` (no `aud` claim when empty) and is bound to `pod` and/or `secret`."""
        if self.private_key is None:
            raise ValueError("no signing key")
        now = int(time.time()) if now is None else now
        info: dict[str, Any] = {"namespace": namespace,
                                "serviceaccount": {"name": name, "uid": uid}}
        for key, bound in (("pod", pod), ("secret", secret)):
            if bound is not None:
                info[key] = {"name": bound.name, "uid": bound.uid}
        claims: dict[str, Any] = {
            "iss": SA_ISSUER, "sub": f"{SA_PREFIX}{namespace}:{name}", "iat": now,
            SA_TENANT_CLAIM: tenant, "kubernetes.io": info}
        if ttl is not None:
            claims["exp"] = now + int(ttl)
            claims["nbf"] = now
        if audiences:
            claims["aud"] = list(audiences)
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm)

    def authenticate(self, bearer: str | None, peer: Any) -> Identity | None:
        """The service account of a valid token; 401 for a bad signature, issuer or
        audience, an expired token, or a service account or bound object that is gone."""
        if bearer is None or bearer.count(".") != 2:
            return None
        claims = self._decode(bearer)
        sub = str(claims["sub"])
        info = claims.get("kubernetes.io")
        info = info if isinstance(info, dict) else {}
        namespace = str(info.get("namespace", ""))
        if not sub.startswith(f"{SA_PREFIX}{namespace}:") or not namespace:
            raise errors.unauthorized("invalid service account token: not a service account")
        account = info.get("serviceaccount")
        uid = str(account.get("uid", "")) if isinstance(account, dict) else ""
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        identity = with_tenant(sub, str(claims.get(SA_TENANT_CLAIM, "")), groups, uid)
        name = sub[len(SA_PREFIX) + len(namespace) + 1:]
        if not name:
            raise errors.unauthorized("invalid service account token: no service account name")
        self._check_alive(identity.tenant, namespace, info, BoundObject(name, uid))
        return identity

    def _decode(self, bearer: str) -> dict[str, Any]:
        """The verified claims (signature, issuer, exp/nbf when present, audience)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                bearer, self.public_key, algorithms=[self.algorithm], issuer=SA_ISSUER,
                options={"require": ["sub", "iss"], "verify_aud": False})
        except jwt.PyJWTError as exc:
            raise errors.unauthorized(f"invalid service account token: {exc}") from None
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
        if aud is not None and (audiences is None or API_AUDIENCE not in audiences):
            raise errors.unauthorized("invalid service account token: the token is not for "
                                      f"this API server (audience {API_AUDIENCE!r})")
        return claims

    def _check_alive(self, tenant: str, namespace: str, info: dict[str, Any],
                     account: BoundObject) -> None:
        """401 unless the service account and the objects the token is bound to still exist
        (with the uids the token names)."""
        checks = [("serviceaccount", self.sa_lookup, account)]
        for key, lookup in (("pod", self.pod_lookup), ("secret", self.secret_lookup)):
            ref = info.get(key)
            if ref is not None:
                if not isinstance(ref, dict):
                    raise errors.unauthorized(f"invalid service account token: bad {key} claim")
                checks.append((key, lookup, BoundObject(str(ref.get("name", "")),
                                                        str(ref.get("uid", "")))))
        for key, lookup, bound in checks:
            if lookup is None:
                continue
            found = lookup(tenant, namespace, bound.name)
            if found is None:
                why = "no longer exists"
            elif bound.uid and found != bound.uid:
                why = "was deleted and recreated (uid mismatch)"
            else:
                continue
            raise errors.unauthorized(f"invalid service account token: the {key} "
                                      f"{namespace}/{bound.name} it is bound to {why}")


class Authenticators:
    """The chain: the first authenticator that recognizes the credentials decides."""

    def __init__(self, chain: Sequence[Authenticator]) -> None:
        self.chain = list(chain)

    def authenticate(self, authorization: str | None, peer: Any) -> Identity | None:
        """The identity for an `Authorization` header and TLS peer; None for anonymous."""
        bearer = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise errors.unauthorized("Unauthorized")
            bearer = value.strip()
        for auth in self.chain:
            identity = auth.authenticate(bearer, peer)
            if identity is not None:
                return identity
        if bearer is not None:
            raise errors.unauthorized("Unauthorized")
        return None
