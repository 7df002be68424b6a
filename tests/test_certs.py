"""The cluster PKI (`arktos.certs`) and `arktos certs issue`: certificates verify against the
CA, files have the right modes, reruns reuse what exists, identities follow Arktos' rule, and a
real TLS handshake carries the client identity to the server."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import socket
import ssl
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification as v
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from arktos import certs
from arktos.certs import Pki, ensure_pki, identity_from_cert, issue_client_cert
from arktos.cli.certs import certs_app
from arktos.client.config import load_config

KEYS = ("ca_key", "serving_key", "admin_key", "sa_key", "kubelet_client_key")
PUBLIC = ("ca_cert", "serving_cert", "admin_cert", "sa_pub", "kubelet_client_cert")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path / "data")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def serial(path: Path) -> int:
    return certs.load_cert(path).serial_number


def store(pki: Pki) -> v.Store:
    return v.Store([certs.load_cert(pki.ca_cert)])


def verify_client(pki: Pki, cert: x509.Certificate) -> None:
    """Full path validation as a TLS server would do it (raises VerificationError).

    Web PKI rules, except that a Kubernetes client certificate has no subjectAltName."""
    ee = v.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, v.Criticality.NON_CRITICAL, None)
    builder = v.PolicyBuilder().store(store(pki)).extension_policies(
        ca_policy=v.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
    builder.build_client_verifier().verify(cert, [])


def verify_server(pki: Pki, name: x509.DNSName | x509.IPAddress) -> None:
    cert = certs.load_cert(pki.serving_cert)
    v.PolicyBuilder().store(store(pki)).build_server_verifier(name).verify(cert, [])


def eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def days_valid(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - cert.not_valid_before_utc) / dt.timedelta(days=1)


# --- ensure_pki --------------------------------------------------------------------------------

def test_files_created_with_modes(pki: Pki) -> None:
    assert mode(pki.dir) == 0o700
    assert {k: mode(getattr(pki, k)) for k in KEYS} == dict.fromkeys(KEYS, 0o600)
    assert {k: mode(getattr(pki, k)) for k in PUBLIC} == dict.fromkeys(PUBLIC, 0o644)
    assert sorted(p.name for p in pki.dir.iterdir()) == sorted(
        [".lock", "ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt",
         "admin.key", "sa.key", "sa.pub", "apiserver-kubelet-client.crt",
         "apiserver-kubelet-client.key"])


def test_ca_is_a_self_signed_p256_ca(pki: Pki) -> None:
    ca = certs.load_cert(pki.ca_cert)
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert constraints.critical and constraints.value.ca
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert 3649 < days_valid(ca) < 3651


def test_serving_cert_verifies_for_every_default_host(pki: Pki) -> None:
    for name in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.IPAddress(ipaddress.ip_address("::1"))):
        verify_server(pki, name)
    cert = certs.load_cert(pki.serving_cert)
    assert eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert 364 < days_valid(cert) < 366
    with pytest.raises(v.VerificationError):
        verify_server(pki, x509.DNSName("example.com"))


def test_admin_cert_is_system_masters(pki: Pki) -> None:
    cert = certs.load_cert(pki.admin_cert)
    verify_client(pki, cert)
    assert identity_from_cert(cert) == ("admin", "system", ["system:masters"])
    assert eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_service_account_keys_are_a_p256_pair(pki: Pki) -> None:
    key = certs.load_key(pki.sa_key)
    pub = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    signature = key.sign(b"token", ec.ECDSA(hashes.SHA256()))
    pub.verify(signature, b"token", ec.ECDSA(hashes.SHA256()))


def test_second_call_reuses_everything(pki: Pki, tmp_path: Path) -> None:
    before = {p: getattr(pki, p).read_bytes() for p in (*KEYS, *PUBLIC)}
    again = ensure_pki(tmp_path / "data", hosts=("127.0.0.1", "LOCALHOST", "0.0.0.0", ""))
    assert again == pki
    assert {p: getattr(pki, p).read_bytes() for p in (*KEYS, *PUBLIC)} == before


def test_new_host_reissues_serving_cert_with_the_union(pki: Pki, tmp_path: Path) -> None:
    ca, admin, first = serial(pki.ca_cert), serial(pki.admin_cert), serial(pki.serving_cert)
    ensure_pki(tmp_path / "data", hosts=["10.1.2.3", "api.example.com"])
    second = serial(pki.serving_cert)
    ensure_pki(tmp_path / "data", hosts=["node-2"])
    assert len({first, second, serial(pki.serving_cert)}) == 3
    assert (serial(pki.ca_cert), serial(pki.admin_cert)) == (ca, admin)
    hosts = certs.cert_hosts(certs.load_cert(pki.serving_cert))
    assert set(hosts) == {"localhost", "api.example.com", "node-2",
                          *map(ipaddress.ip_address, ["127.0.0.1", "::1", "10.1.2.3"])}
    verify_server(pki, x509.IPAddress(ipaddress.ip_address("10.1.2.3")))
    assert mode(pki.serving_key) == 0o600


def test_leaf_not_signed_by_the_ca_or_near_expiry_is_reissued(pki: Pki, tmp_path: Path) -> None:
    other = certs._new_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stale")])
    pki.serving_cert.write_bytes(certs.cert_pem(certs._sign_leaf(
        other, subject, key.public_key(), 365, server=True, sans=[x509.DNSName("localhost")])))
    ca = (certs.load_cert(pki.ca_cert), certs.load_key(pki.ca_key))
    pki.admin_cert.write_bytes(certs.cert_pem(certs._sign_leaf(
        ca, subject, key.public_key(), 10, server=False)))
    ensure_pki(tmp_path / "data")
    verify_server(pki, x509.DNSName("localhost"))
    assert identity_from_cert(certs.load_cert(pki.admin_cert))[0] == "admin"


def test_a_key_that_does_not_match_its_cert_is_replaced(pki: Pki, tmp_path: Path) -> None:
    certs.write_private(pki.admin_key, certs.key_pem(ec.generate_private_key(ec.SECP256R1())))
    old = serial(pki.admin_cert)
    ensure_pki(tmp_path / "data")
    assert serial(pki.admin_cert) != old
    assert certs.load_key(pki.admin_key).public_key() == certs.load_cert(
        pki.admin_cert).public_key()


def test_half_a_ca_is_an_error_not_a_new_ca(pki: Pki, tmp_path: Path) -> None:
    pki.ca_key.unlink()
    with pytest.raises(certs.PkiError, match="ca.key is missing"):
        ensure_pki(tmp_path / "data")
    assert not pki.ca_key.exists()


# --- client certificates and identities --------------------------------------------------------

def test_issued_client_cert_carries_the_identity(pki: Pki) -> None:
    pem, key_pem = issue_client_cert(pki, user="alice", tenant="acme",
                                     groups=["devs", "ops"], days=30)
    cert = x509.load_pem_x509_certificate(pem)
    verify_client(pki, cert)
    assert identity_from_cert(cert) == ("alice", "acme", ["devs", "ops"])
    assert 29 < days_valid(cert) < 31
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert key.public_key() == cert.public_key()


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"user": "", "tenant": "acme"}, "needs a user"),
    ({"user": "bob", "tenant": "acme", "groups": ["tenant:other"]}, "may not start"),
    ({"user": "bob", "tenant": "acme", "days": 0}, "days must be positive"),
])
def test_bad_client_cert_requests(pki: Pki, kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        issue_client_cert(pki, **kwargs)


def cert_with(attrs: Sequence[tuple[x509.ObjectIdentifier, str]]) -> x509.Certificate:
    """A throwaway self-signed certificate whose subject is `attrs` in order."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))


CN, O = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME


@pytest.mark.parametrize(("attrs", "identity"), [
    ([(O, "tenant:acme"), (CN, "alice")], ("alice", "acme", [])),
    ([(CN, "alice"), (O, "g1"), (O, "tenant:acme"), (O, "g2")], ("alice", "acme", ["g1", "g2"])),
    ([(O, "system:nodes"), (CN, "system:node:n1")], ("system:node:n1", "", ["system:nodes"])),
    ([(CN, "bob")], ("bob", "", [])),
    ([(O, "tenant:"), (CN, "bob")], ("bob", "", [])),
])
def test_identity_from_cert(attrs: list[tuple[x509.ObjectIdentifier, str]],
                            identity: tuple[str, str, list[str]]) -> None:
    assert identity_from_cert(cert_with(attrs)) == identity


@pytest.mark.parametrize(("attrs", "error"), [
    ([(O, "tenant:a"), (O, "tenant:b"), (CN, "mallory")], "more than one tenant"),
    ([(O, "tenant:a"), (O, "tenant:a"), (CN, "mallory")], "more than one tenant"),
    ([(O, "tenant:a")], "no common name"),
])
def test_identity_from_cert_rejects(attrs: list[tuple[x509.ObjectIdentifier, str]],
                                    error: str) -> None:
    with pytest.raises(ValueError, match=error):
        identity_from_cert(cert_with(attrs))


# --- kubeconfigs -------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_kubeconfig_for_a_user(pki: Pki, tmp_path: Path) -> None:
    pem, key = issue_client_cert(pki, user="alice", tenant="acme")
    out = tmp_path / "kube" / "alice.yaml"
    certs.write_kubeconfig_for(pki, server="https://127.0.0.1:6443", user="alice",
                               tenant="acme", cert_pem=pem, key_pem=key, out=out,
                               namespace="team")
    assert mode(out) == 0o600
    raw = yaml.safe_load(out.read_text())
    assert raw["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": b64(pki.ca_cert.read_bytes())}
    assert raw["users"][0]["user"] == {"client-certificate-data": b64(pem),
                                       "client-key-data": b64(key)}
    config = load_config(out)
    assert (config.server, config.tenant, config.namespace, config.context) == (
        "https://127.0.0.1:6443", "acme", "team", "acme-alice@arktos")


def test_kubeconfig_is_read_by_the_official_client(pki: Pki, tmp_path: Path) -> None:
    from kubernetes import client, config

    pem, key = issue_client_cert(pki, user="alice", tenant="acme")
    out = tmp_path / "alice.yaml"
    certs.write_kubeconfig_for(pki, server="https://localhost:6443", user="alice",
                               tenant="acme", cert_pem=pem, key_pem=key, out=out)
    conf = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(out), client_configuration=conf)
    assert conf.host == "https://localhost:6443"
    assert Path(str(conf.cert_file)).read_bytes() == pem
    assert Path(str(conf.key_file)).read_bytes() == key
    assert Path(str(conf.ssl_ca_cert)).read_bytes() == pki.ca_cert.read_bytes()


def test_admin_kubeconfig(pki: Pki) -> None:
    conf = certs.admin_kubeconfig(pki, "https://127.0.0.1:6443")
    assert conf["current-context"] == "system-admin@arktos"
    assert conf["contexts"][0]["context"]["tenant"] == "system"
    user = conf["users"][0]["user"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert identity_from_cert(cert) == ("admin", "system", ["system:masters"])
    assert base64.b64decode(user["client-key-data"]) == pki.admin_key.read_bytes()


# --- a real TLS handshake ----------------------------------------------------------------------

async def handshake(pki: Pki, tmp_path: Path, host: str,
                    client_pem: tuple[bytes, bytes] | None) -> bytes | None:
    """Connect to a TLS server on the serving cert; return the client cert (DER) it saw."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki.ca_cert)
    server_ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    seen: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.set_result(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        writer.close()

    client_ctx = ssl.create_default_context(cafile=pki.ca_cert)
    if client_pem:
        (tmp_path / "c.crt").write_bytes(client_pem[0])
        certs.write_private(tmp_path / "c.key", client_pem[1])
        client_ctx.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    server = await asyncio.start_server(serve, host, 0, ssl=server_ctx)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(host, port, ssl=client_ctx)
        try:  # TLS 1.3: the server checks the client cert after the client is connected
            await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        if not seen.done():
            raise ConnectionError("the server dropped the connection in the handshake")
        return seen.result()


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_tls_handshake_carries_the_client_identity(pki: Pki, tmp_path: Path) -> None:
    pem = issue_client_cert(pki, user="alice", tenant="acme", groups=["devs"])
    der = await handshake(pki, tmp_path, "127.0.0.1", pem)
    assert der is not None
    assert identity_from_cert(x509.load_der_x509_certificate(der)) == ("alice", "acme", ["devs"])


async def test_tls_handshake_without_a_client_cert_and_over_ipv6(pki: Pki,
                                                                 tmp_path: Path) -> None:
    assert await handshake(pki, tmp_path, "localhost", None) is None
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    der = await handshake(pki, tmp_path, "::1", (pki.admin_cert.read_bytes(),
                                                 pki.admin_key.read_bytes()))
    assert der is not None
    assert identity_from_cert(x509.load_der_x509_certificate(der))[1] == "system"


async def test_tls_rejects_a_foreign_client_cert(pki: Pki, tmp_path: Path) -> None:
    foreign = ensure_pki(tmp_path / "elsewhere")
    pem = issue_client_cert(foreign, user="mallory", tenant="acme")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await handshake(pki, tmp_path, "127.0.0.1", pem)


# --- `arktos certs issue` ----------------------------------------------------------------------

def run(*args: str) -> Any:
    return CliRunner().invoke(certs_app, ["issue", *args])


def test_cli_issues_a_kubeconfig(pki: Pki, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "admin.kubeconfig").write_text(yaml.safe_dump(
        certs.admin_kubeconfig(pki, "https://10.9.9.9:7443")))
    out = tmp_path / "bob.kubeconfig"
    result = run("--data-dir", str(data), "--user", "bob", "--tenant", "acme", "--group", "a",
                 "--group", "b", "--days", "7", "--kubeconfig", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout and "acme-bob@arktos" in result.stdout
    config = load_config(out)
    assert (config.server, config.tenant) == ("https://10.9.9.9:7443", "acme")
    raw = yaml.safe_load(out.read_text())
    cert = x509.load_pem_x509_certificate(
        base64.b64decode(raw["users"][0]["user"]["client-certificate-data"]))
    verify_client(pki, cert)
    assert identity_from_cert(cert) == ("bob", "acme", ["a", "b"])
    assert 6 < days_valid(cert) < 8 and mode(out) == 0o600


def test_cli_server_flag_and_default(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "k"
    args = ("--data-dir", str(tmp_path / "data"), "--user", "u", "--tenant", "t",
            "--kubeconfig", str(out))
    assert run(*args).exit_code == 0
    assert load_config(out).server == "https://127.0.0.1:6443"
    assert run(*args, "--server", "https://h:1").exit_code == 0
    assert load_config(out).server == "https://h:1"


def test_cli_without_a_ca(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path), "--user", "u", "--tenant", "t",
                 "--kubeconfig", str(tmp_path / "k"))
    assert result.exit_code == 2
    assert f"no cluster CA in {tmp_path / 'pki'}" in result.stderr
    assert f"`arktos up --data-dir {tmp_path}`" in result.stderr
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("extra", [("--group", "tenant:x"), ("--days", "0")])
def test_cli_bad_requests(pki: Pki, tmp_path: Path, extra: tuple[str, str]) -> None:
    result = run("--data-dir", str(tmp_path / "data"), "--user", "u", "--tenant", "t",
                 "--kubeconfig", str(tmp_path / "k"), *extra)
    assert result.exit_code == 2
