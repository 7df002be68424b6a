"""Minted service-account tokens (pure: no server): expiry, audiences, bound objects and the
lookups that retire them; TokenRequest spec checks; who may mint by the default policy."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from arktos.api.errors import StatusError
from arktos.api.rbac_policy import bootstrap_policy, subject, tenant_policy
from arktos.api.resources import Scope
from arktos.apiserver.authn import (
    API_AUDIENCE,
    SA_TENANT_CLAIM,
    BoundObject,
    Identity,
    ServiceAccountTokens,
)
from arktos.apiserver.authz import Attributes, RbacIndex, User, authorize
from arktos.apiserver.tokenrequest import MAX_EXPIRATION, parse_spec


def _signer() -> ServiceAccountTokens:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return ServiceAccountTokens(private_key=private, public_key=public)


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _who(tokens: ServiceAccountTokens, token: str) -> Identity:
    identity = tokens.authenticate(token, None)
    assert identity is not None
    return identity


def _refused(tokens: ServiceAccountTokens, token: str) -> str:
    with pytest.raises(StatusError) as err:
        tokens.authenticate(token, None)
    assert err.value.code == 401
    return err.value.message


def test_issue_without_new_arguments_keeps_the_legacy_claims() -> None:
    tokens = _signer()
    claims = _claims(tokens.issue(tenant="acme", namespace="web", name="builder", uid="u1"))
    assert set(claims) == {"iss", "sub", "iat", SA_TENANT_CLAIM, "kubernetes.io"}
    assert claims["kubernetes.io"] == {"namespace": "web",
                                       "serviceaccount": {"name": "builder", "uid": "u1"}}


def test_minted_claims_carry_expiry_audiences_and_the_bound_pod() -> None:
    tokens = _signer()
    token = tokens.issue(tenant="acme", namespace="web", name="builder", uid="u1", ttl=900,
                         audiences=[API_AUDIENCE, "vault"], pod=BoundObject("p", "pu"),
                         now=1_000)
    claims = _claims(token)
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (1_000, 1_000, 1_900)
    assert claims["aud"] == [API_AUDIENCE, "vault"]
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": "pu"}
    assert "secret" not in claims["kubernetes.io"]
    fresh = tokens.issue(tenant="acme", namespace="web", name="builder", ttl=900,
                         audiences=[API_AUDIENCE], pod=BoundObject("p", "pu"))
    who = _who(tokens, fresh)
    assert (who.name, who.tenant) == ("system:serviceaccount:web:builder", "acme")


def test_expired_tokens_are_refused() -> None:
    tokens = _signer()
    past = int(time.time()) - 7200
    expired = tokens.issue(tenant="acme", namespace="web", name="b", ttl=3600, now=past)
    assert "expired" in _refused(tokens, expired).lower()
    assert _who(tokens, tokens.issue(tenant="acme", namespace="web", name="b", ttl=3600))


@pytest.mark.parametrize(("audiences", "ok"), [
    ((), True),  # legacy: no aud claim
    ((API_AUDIENCE,), True),
    (("https://vault.example", API_AUDIENCE), True),
    (("https://vault.example",), False),
])
def test_audience_must_include_the_api_server(audiences: tuple[str, ...], ok: bool) -> None:
    tokens = _signer()
    token = tokens.issue(tenant="acme", namespace="web", name="b", ttl=600, audiences=audiences)
    if ok:
        assert _who(tokens, token).tenant == "acme"
    else:
        assert "audience" in _refused(tokens, token)


def test_a_single_string_audience_is_understood() -> None:
    tokens = _signer()
    assert tokens.private_key is not None
    claims = {"iss": "arktos", "sub": "system:serviceaccount:web:b", SA_TENANT_CLAIM: "acme",
              "kubernetes.io": {"namespace": "web"}}
    good = jwt.encode({**claims, "aud": API_AUDIENCE}, tokens.private_key, algorithm="ES256")
    bad = jwt.encode({**claims, "aud": "other"}, tokens.private_key, algorithm="ES256")
    assert _who(tokens, good).name == "system:serviceaccount:web:b"
    _refused(tokens, bad)


def test_lookups_retire_tokens_of_deleted_or_recreated_objects() -> None:
    tokens = _signer()
    live = {("sa", "acme", "web", "b"): "sa-1", ("pod", "acme", "web", "p"): "pod-1",
            ("secret", "acme", "web", "s"): "sec-1"}
    asked: list[tuple[str, ...]] = []

    def lookup(kind: str) -> Any:
        def find(tenant: str, namespace: str, name: str) -> str | None:
            asked.append((kind, tenant, namespace, name))
            return live.get((kind, tenant, namespace, name))
        return find

    tokens.sa_lookup, tokens.pod_lookup = lookup("sa"), lookup("pod")
    tokens.secret_lookup = lookup("secret")
    pod_token = tokens.issue(tenant="acme", namespace="web", name="b", uid="sa-1", ttl=600,
                             pod=BoundObject("p", "pod-1"))
    secret_token = tokens.issue(tenant="acme", namespace="web", name="b", uid="sa-1", ttl=600,
                                secret=BoundObject("s", "sec-1"))
    assert _who(tokens, pod_token).uid == "sa-1"
    assert _who(tokens, secret_token).uid == "sa-1"
    assert ("pod", "acme", "web", "p") in asked and ("secret", "acme", "web", "s") in asked
    live[("pod", "acme", "web", "p")] = "pod-2"  # deleted and recreated under the same name
    assert "uid mismatch" in _refused(tokens, pod_token)
    del live[("pod", "acme", "web", "p")]
    assert "pod web/p" in _refused(tokens, pod_token)
    del live[("secret", "acme", "web", "s")]
    assert "secret web/s" in _refused(tokens, secret_token)
    legacy = tokens.issue(tenant="acme", namespace="web", name="b")  # no uid: name only
    assert _who(tokens, legacy).name == "system:serviceaccount:web:b"
    del live[("sa", "acme", "web", "b")]
    assert "serviceaccount web/b" in _refused(tokens, legacy)


def test_tokens_with_mismatched_subject_and_namespace_are_refused() -> None:
    tokens = _signer()
    assert tokens.private_key is not None
    for sub, ns in (("system:serviceaccount:other:b", "web"), ("system:serviceaccount:web:", "web"),
                    ("alice", "web")):
        token = jwt.encode({"iss": "arktos", "sub": sub, SA_TENANT_CLAIM: "acme",
                            "kubernetes.io": {"namespace": ns}}, tokens.private_key,
                           algorithm="ES256")
        _refused(tokens, token)


# --- TokenRequest spec ----------------------------------------------------------------------

def test_spec_defaults_and_cap() -> None:
    spec = parse_spec({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "spec": {}}, "b")
    assert (spec.audiences, spec.seconds, spec.bound) == ([API_AUDIENCE], 3600, None)
    assert parse_spec({}, "b").seconds == 3600
    assert parse_spec({"spec": {"expirationSeconds": 600}}, "b").seconds == 600
    assert parse_spec({"spec": {"expirationSeconds": 10**9}}, "b").seconds == MAX_EXPIRATION
    bound = parse_spec({"spec": {"audiences": ["x"], "boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"}}}, "b")
    assert (bound.audiences, bound.bound_kind, bound.bound) == (["x"], "Pod",
                                                                BoundObject("p", "u"))


@pytest.mark.parametrize(("spec", "field"), [
    ({"expirationSeconds": 599}, "spec.expirationSeconds"),
    ({"expirationSeconds": 2**32 + 1}, "spec.expirationSeconds"),
    ({"expirationSeconds": "3600"}, "spec.expirationSeconds"),
    ({"audiences": "x"}, "spec.audiences"),
    ({"audiences": [""]}, "spec.audiences[0]"),
    ({"boundObjectRef": {"kind": "Node", "name": "n"}}, "spec.boundObjectRef.kind"),
    ({"boundObjectRef": {"kind": "Pod"}}, "spec.boundObjectRef.name"),
    ({"boundObjectRef": {"kind": "Pod", "name": "p", "apiVersion": "apps/v1"}},
     "spec.boundObjectRef.apiVersion"),
])
def test_bad_specs_are_invalid(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(StatusError) as err:
        parse_spec({"spec": spec}, "b")
    assert (err.value.code, err.value.reason) == (422, "Invalid")
    assert field in [c["field"] for c in err.value.details["causes"]]


def test_other_kinds_are_bad_requests() -> None:
    for body in ([], {"kind": "Pod"}, {"apiVersion": "authentication.k8s.io/v1beta1"}):
        with pytest.raises(StatusError) as err:
            parse_spec(body, "b")
        assert err.value.code == 400


# --- who may mint -------------------------------------------------------------------------

def _mint(user: User, tenant: str = "acme") -> Attributes:
    return Attributes(user, "create", "serviceaccounts", "", "token", "b", "dev", tenant,
                      Scope.NAMESPACE)


@pytest.mark.parametrize(("role", "ok"), [("admin", True), ("edit", True), ("view", False)])
def test_admin_and_edit_may_mint_view_may_not(role: str, ok: bool) -> None:
    index = RbacIndex()
    binding = {"kind": "RoleBinding", "metadata": {"tenant": "acme", "namespace": "dev",
                                                   "name": "rb"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": role}, "subjects": [subject("User", "bob")]}
    for obj in (*tenant_policy("acme"), binding):
        index.put(obj["kind"], obj)
    bob = User("bob", "acme")
    assert authorize(index, _mint(bob)).allowed is ok
    assert not authorize(index, _mint(bob, "beta")).allowed
    reads = Attributes(bob, "get", "serviceaccounts", "", "", "b", "dev", "acme", Scope.NAMESPACE)
    assert authorize(index, reads).allowed


def test_nodes_may_mint_tokens() -> None:
    index = RbacIndex()
    for obj in bootstrap_policy():
        index.put(obj["kind"], obj)
    node = User("system:node:n1", "system", ("system:nodes",))
    assert authorize(index, _mint(node)).allowed
    stranger = User("system:node:n1", "system")
    assert not authorize(index, _mint(stranger)).allowed
