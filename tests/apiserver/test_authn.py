"""Token-file and service-account authentication (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from arktos.api.errors import StatusError
from arktos.apiserver.authn import Authenticators, ServiceAccountTokens, TokenFile


def _keys() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def test_token_file_rows_carry_tenant_and_groups(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('tok-a,alice,u1,"dev,ops",,acme\n'
                    'tok-s,system:kube-scheduler,u2,,,\n')
    tokens = TokenFile.load(path)
    alice = Authenticators([tokens]).authenticate("Bearer tok-a", None)
    assert alice is not None and alice.tenant == "acme" and alice.uid == "u1"
    assert alice.groups == ("dev", "ops", "system:authenticated")
    sched = tokens.authenticate("tok-s", None)
    assert sched is not None and sched.tenant == "system"


def test_token_file_refuses_tenantless_ordinary_users(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("tok,bob,u3\n")
    with pytest.raises(ValueError, match="has no tenant"):
        TokenFile.load(path)


def test_unknown_or_malformed_bearer_is_401(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("tok,alice,u1,,,acme\n")
    chain = Authenticators([TokenFile.load(path)])
    for header in ("Bearer nope", "Basic abc", "Bearer "):
        with pytest.raises(StatusError) as err:
            chain.authenticate(header, None)
        assert err.value.code == 401
    assert chain.authenticate(None, None) is None


def test_service_account_tokens_round_trip_and_reject_forgeries() -> None:
    private, public = _keys()
    tokens = ServiceAccountTokens(private_key=private, public_key=public)
    token = tokens.issue(tenant="acme", namespace="web", name="builder", uid="sa-1")
    who = Authenticators([tokens]).authenticate(f"Bearer {token}", None)
    assert who is not None
    assert (who.name, who.tenant) == ("system:serviceaccount:web:builder", "acme")
    assert "system:serviceaccounts:web" in who.groups
    other_private, _ = _keys()
    forged = ServiceAccountTokens(private_key=other_private, public_key=public).issue(
        tenant="acme", namespace="web", name="builder")
    expired = tokens.issue(tenant="acme", namespace="web", name="builder", ttl=-10)
    tampered = jwt.encode({"iss": "arktos", "sub": "system:serviceaccount:web:x",
                           "arktos.io/tenant": "acme"}, "s" * 32, algorithm="HS256")
    for bad in (forged, expired, tampered):
        with pytest.raises(StatusError) as err:
            Authenticators([tokens]).authenticate(f"Bearer {bad}", None)
        assert err.value.code == 401
